"""Self-critical training end to end: a tiny run from a cross-entropy model raises train CIDEr-D, and bad starts are refused."""

import pytest
import torch

from captioner.config import EncoderConfig, OptimConfig
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError
from captioner.evaluation.cider import corpus_cider
from captioner.inference import Captioner
from captioner.models.caption_decoder import CaptionDecoder, DecoderConfig
from captioner.models.decoding import generate
from captioner.text import Vocabulary, tokenize
from captioner.training.caption_module import CaptioningModule
from captioner.training.caption_objectives import CaptionTrainingConfig
from captioner.training.runner import train
from helpers import tiny_caption_config


@pytest.fixture(scope="module")
def xe_model(shapes, tmp_path_factory):
    return train(tiny_caption_config(shapes, tmp_path_factory.mktemp("xe"), "trainer.max_epochs=2")).model_path


REFERENCES = {  # a toy set: four "images" (random grids), three captions each
    0: ["a red circle on the left", "a red circle", "one red circle on the left"],
    1: ["a blue square on the right", "a blue square", "one blue square on the right"],
    2: ["a green triangle at the top", "a green triangle", "one green triangle at the top"],
    3: ["two red circles", "two red circles side by side", "a pair of red circles"],
}


def toy_module(objective: str, baseline: str = "mean_others", candidates: str = "beam") -> CaptioningModule:
    torch.manual_seed(0)
    vocab = Vocabulary.build([r for refs in REFERENCES.values() for r in refs])
    decoder = CaptionDecoder(DecoderConfig(vocab_size=len(vocab), feature_dim=16, embed_dim=16, hidden_dim=32,
                                           attention_dim=16, dropout=0.0))
    training = CaptionTrainingConfig(objective=objective, init_from="toy" if objective == "scst" else None,
                                     scst_baseline=baseline, scst_candidates=candidates, scst_samples=5, scst_max_len=10)
    return CaptioningModule(build_encoder("tiny_cnn", pretrained=False), decoder, vocab, EncoderConfig(name="tiny_cnn"),
                            OptimConfig(), max_len=10, training=training, train_references=REFERENCES)


def greedy_cider(module: CaptioningModule, features: torch.Tensor) -> float:
    out = generate(module.decoder, features, "greedy", max_len=10)
    results = {i: " ".join(module.vocab.decode_tokens(t)) for i, t in enumerate(out.tokens)}
    return corpus_cider(results, {i: [" ".join(tokenize(r)) for r in refs] for i, refs in REFERENCES.items()})


def optimise(module: CaptioningModule, batch: dict, features: torch.Tensor, steps: int, lr: float) -> None:
    optimizer = torch.optim.Adam(module.decoder.parameters(), lr=lr)
    for _ in range(steps):
        loss = module.objective(module, batch, features)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("baseline, candidates", [("mean_others", "beam"), ("greedy", "beam"), ("mean_others", "sample")])
def test_self_critical_steps_raise_train_cider_on_a_toy_set(baseline, candidates):
    features = torch.randn(4, 9, 16, generator=torch.Generator().manual_seed(0))
    batch = {"image_ids": torch.arange(4), "references": list(REFERENCES.values())}
    xe = toy_module("xe")
    optimise(xe, batch, features, steps=12, lr=1e-2)  # a partly trained cross-entropy model
    scst = toy_module("scst", baseline, candidates)
    scst.decoder.load_state_dict(xe.decoder.state_dict())
    before = greedy_cider(scst, features)
    optimise(scst, batch, features, steps=40, lr=5e-3)
    assert greedy_cider(scst, features) > before + 0.2


def test_self_critical_training_runs_through_the_trainer(shapes, xe_model, tmp_path):
    config = tiny_caption_config(shapes, tmp_path / "scst", "training.objective=scst", f"training.init_from={xe_model}",
                                 "trainer.max_epochs=1", "optim.schedule=constant")
    result = train(config)
    assert {"train/reward", "train/baseline", "val/cider", "val/cider_greedy", "best_val/cider"} <= set(result.metrics)
    assert Captioner.load(result.model_path).vocab == Captioner.load(xe_model).vocab


def test_init_from_must_exist_and_be_a_caption_model(shapes, tmp_path):
    with pytest.raises(CaptionerError, match="checkpoint not found: .*nope.pt"):
        train(tiny_caption_config(shapes, tmp_path / "a", "training.objective=scst", f"training.init_from={tmp_path / 'nope.pt'}"))


def test_init_from_with_another_vocabulary_or_encoder_is_refused(shapes, xe_model, tmp_path):
    start = f"training.init_from={xe_model}"
    with pytest.raises(CaptionerError, match="another vocabulary"):
        train(tiny_caption_config(shapes, tmp_path / "b", start, "data.vocab_max_size=8"))
    with pytest.raises(CaptionerError, match="another encoder than the config: image_size 64 .config: 96"):
        train(tiny_caption_config(shapes, tmp_path / "c", start, "encoder.image_size=96"))
