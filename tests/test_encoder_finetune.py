"""Fine-tuning the encoder's top stages, from scratch or from a trained model file (training.init_from)."""

import pytest
import torch

from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.training.runner import train
from helpers import tiny_caption_config


@pytest.fixture(scope="module")
def frozen_model(shapes, tmp_path_factory):
    """A cross-entropy model trained on the frozen tiny encoder."""
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("frozen"), "encoder.trainable_stages=0")).model_path


def test_a_trained_model_goes_on_with_its_top_encoder_stage_unfrozen(shapes, frozen_model, tmp_path):
    config = tiny_caption_config(shapes, tmp_path, f"training.init_from={frozen_model}", "encoder.trainable_stages=1")
    start, tuned = Captioner.load(frozen_model), Captioner.load(train(config).model_path)
    assert tuned.encoder_config.trainable_stages == 1  # the model file says its encoder was fine-tuned
    changed = [not torch.equal(_flat(a), _flat(b)) for a, b in zip(start.encoder.stages.values(), tuned.encoder.stages.values())]
    assert changed[-1] and not any(changed[:-1])  # only the top stage learnt


def test_a_fine_tuned_encoder_refuses_a_feature_cache(shapes, frozen_model, tmp_path):
    cache = "data.features_dir=" + str(tmp_path / "cache")
    with pytest.raises(CaptionerError, match="trainable_stages=1 fine-tunes the encoder, which a feature cache cannot"):
        train(tiny_caption_config(shapes, tmp_path / "a", "encoder.trainable_stages=1", cache))
    with pytest.raises(CaptionerError, match="trainable_stages=1 fine-tunes the encoder, which a feature cache cannot"):
        train(tiny_caption_config(shapes, tmp_path / "b", f"training.init_from={frozen_model}", "encoder.trainable_stages=1", cache))


def _flat(stage: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in stage.parameters()])


def test_freezing_a_fine_tuned_encoder_again_is_refused(shapes, frozen_model, tmp_path):
    tuned = train(tiny_caption_config(shapes, tmp_path / "tuned", f"training.init_from={frozen_model}",
                                      "encoder.trainable_stages=1")).model_path
    with pytest.raises(CaptionerError, match="has 1 fine-tuned encoder stages; encoder.trainable_stages=0 would lose them"):
        train(tiny_caption_config(shapes, tmp_path / "b", f"training.init_from={tuned}", "encoder.trainable_stages=0"))
