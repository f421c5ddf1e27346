"""Fine-tuning the encoder's top stages, from scratch or from a trained model file (training.init_from)."""

import json

import pytest
import torch

from captioner.cli import main
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.training.runner import train
from helpers import tiny_caption_config


@pytest.fixture(scope="module")
def frozen_model(shapes, tmp_path_factory):
    """A cross-entropy model trained on the frozen tiny encoder."""
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("frozen"), "encoder.trainable_stages=0")).model_path


@pytest.fixture(scope="module")
def tuned_model(shapes, frozen_model, tmp_path_factory):
    """frozen_model, trained on with its encoder's top stage unfrozen."""
    out = tmp_path_factory.mktemp("tuned")
    return train(tiny_caption_config(shapes, out, f"training.init_from={frozen_model}", "encoder.trainable_stages=1")).model_path


def test_a_trained_model_goes_on_with_its_top_encoder_stage_unfrozen(frozen_model, tuned_model):
    start, tuned = Captioner.load(frozen_model), Captioner.load(tuned_model)
    assert tuned.encoder_config.trainable_stages == 1 and tuned.encoder_config.fine_tuned  # the model file says so
    changed = [not torch.equal(_flat(a), _flat(b)) for a, b in zip(start.encoder.stages.values(), tuned.encoder.stages.values())]
    assert changed[-1] and not any(changed[:-1])  # only the top stage learnt


def test_a_fine_tuned_encoder_frozen_again_keeps_its_weights(shapes, tuned_model, tmp_path):
    config = tiny_caption_config(shapes, tmp_path, f"training.init_from={tuned_model}", "encoder.trainable_stages=0")
    before, after = Captioner.load(tuned_model), Captioner.load(train(config).model_path)
    assert after.encoder_config.trainable_stages == 0 and after.encoder_config.fine_tuned
    assert all(torch.equal(a, b) for a, b in zip(before.encoder.state_dict().values(), after.encoder.state_dict().values()))


def test_an_encoder_in_training_refuses_a_feature_cache(shapes, frozen_model, tmp_path):
    cache = "data.features_dir=" + str(tmp_path / "cache")
    with pytest.raises(CaptionerError, match="the encoder trains 1 stages, which a feature cache cannot follow"):
        train(tiny_caption_config(shapes, tmp_path / "a", "encoder.trainable_stages=1", cache))
    with pytest.raises(CaptionerError, match="the encoder trains 1 stages, which a feature cache cannot follow"):
        train(tiny_caption_config(shapes, tmp_path / "b", f"training.init_from={frozen_model}", "encoder.trainable_stages=1", cache))


def test_a_fine_tuned_encoder_reads_a_cache_of_its_own_grids_only(shapes, tuned_model, tmp_path, capsys):
    files = ["--annotations", str(shapes / "captions_val.json"), "--images", str(shapes / "images"), "--workers", "0", "--quiet"]
    assert main(["extract-features", *files, "--out", str(tmp_path / "package"), "--encoder", "tiny_cnn", "--image-size", "64"]) == 0
    assert main(["extract-features", *files, "--out", str(tmp_path / "own"), "--checkpoint", str(tuned_model)]) == 0
    evaluate = ["evaluate", "--checkpoint", str(tuned_model), *files[:4], "--quiet"]
    assert main([*evaluate, "--features", str(tmp_path / "package"), "--out", str(tmp_path / "a")]) == 1
    assert "is stale for this model (weights None vs '" in capsys.readouterr().err  # named, with the way out
    assert main([*evaluate, "--features", str(tmp_path / "own"), "--out", str(tmp_path / "b")]) == 0
    from_images = main([*evaluate, "--out", str(tmp_path / "c")])
    assert from_images == 0 and _results(tmp_path / "b") == _results(tmp_path / "c")  # the same captions


def test_extract_features_from_a_model_file_takes_no_encoder_options(shapes, tuned_model, tmp_path, capsys):
    assert main(["extract-features", "--annotations", str(shapes / "captions_val.json"), "--images", str(shapes / "images"),
                 "--out", str(tmp_path / "c"), "--checkpoint", str(tuned_model), "--image-size", "96"]) == 1
    assert "--checkpoint brings its own encoder settings; drop --image-size" in capsys.readouterr().err


def test_the_weights_digest_follows_values_not_bits():
    encoder = build_encoder("tiny_cnn", image_size=64)
    weight = next(encoder.parameters())
    with torch.no_grad():
        weight.view(-1)[0] = 0.0
        positive = encoder.weights_digest()
        weight.view(-1)[0] = -0.0  # equal to 0.0: a soup's mean may turn one into the other
        assert encoder.weights_digest() == positive
        weight.view(-1)[0] = 1e-3
        assert encoder.weights_digest() != positive


def _results(folder) -> dict:
    return {r["image_id"]: r["caption"] for r in json.loads((folder / "results.json").read_text())}


def _flat(stage: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in stage.parameters()])
