"""Ensembles of model files: several decoders over one encoder's grid, their word probabilities averaged."""

import pytest
import torch
from PIL import Image

from captioner.benchmarks.workloads import write_model_file
from captioner.cli import main
from captioner.config import EncoderConfig
from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.models.decoding import generate
from helpers import assert_generation_matches_scoring

TINY_ENCODER = EncoderConfig(name="tiny_cnn", pretrained=False, image_size=64)
TINY_DECODER = {"embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}


def tiny_model(path, seed: int, vocab_words: int = 40, **decoder) -> Captioner:
    torch.manual_seed(seed)
    return Captioner.load(write_model_file(path, TINY_ENCODER, {**TINY_DECODER, **decoder}, vocab_words=vocab_words))


@pytest.fixture
def two_models(tmp_path) -> list[Captioner]:
    """Two different decoders (Show, Attend and Tell and Up-Down) over the same tiny encoder."""
    first = tiny_model(tmp_path / "a.pt", seed=1)
    second = tiny_model(tmp_path / "b.pt", seed=2, architecture="up_down", deep_output=False)
    second.encoder = first.encoder  # the same encoder weights (each file would otherwise draw its own)
    return [first, second]


def test_each_step_predicts_the_mean_of_the_members_probabilities(two_models):
    ensemble = Captioner.ensemble(two_models, ["a.pt", "b.pt"]).decoder
    grid = torch.randn(2, 4, two_models[0].encoder.channels)  # (B, L, C)
    tokens = torch.tensor([1, 5])
    memory, state = ensemble.prepare(grid)
    out = ensemble.step(tokens, state, memory)
    members = [m.decoder.step(tokens, *reversed(m.decoder.prepare(grid))) for m in two_models]
    expected = torch.stack([o.logits.softmax(-1) for o in members]).mean(0)  # (B, V)
    torch.testing.assert_close(out.logits.exp(), expected)
    torch.testing.assert_close(out.alpha, (members[0].alpha + members[1].alpha) / 2)


def test_a_model_joined_with_itself_captions_as_it_does_alone(two_models):
    model = two_models[0]
    images = torch.rand(2, 3, 64, 64)
    alone = model.caption(images, beam_size=3)
    twice = Captioner.ensemble([model, model], ["a.pt", "a.pt"]).caption(images, beam_size=3)
    assert [c.text for c in twice] == [c.text for c in alone]
    for a, b in zip(alone, twice):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        torch.testing.assert_close(torch.from_numpy(b.alphas), torch.from_numpy(a.alphas))


@pytest.mark.parametrize("strategy", [{"strategy": "greedy"}, {"strategy": "beam", "beam_size": 3}])
def test_search_scores_equal_the_ensembles_teacher_forced_log_probabilities(two_models, strategy):
    ensemble = Captioner.ensemble(two_models, ["a.pt", "b.pt"]).decoder
    grid = torch.randn(3, 4, two_models[0].encoder.channels)  # (B, L, C)
    found = generate(ensemble, grid, max_len=6, **strategy)
    assert_generation_matches_scoring(ensemble, grid, found, length_penalty=1.0 if strategy["strategy"] == "beam" else 0.0)


def test_models_that_cannot_join_are_refused_in_one_line(two_models, tmp_path):
    other_vocab = tiny_model(tmp_path / "c.pt", seed=3, vocab_words=50)
    with pytest.raises(CaptionerError, match=r"c\.pt cannot join an ensemble with a\.pt: their vocabularies differ"):
        Captioner.ensemble([two_models[0], other_vocab], ["a.pt", "c.pt"])
    other_size = Captioner.load(write_model_file(tmp_path / "d.pt", EncoderConfig(name="tiny_cnn", pretrained=False, image_size=96),
                                                 TINY_DECODER, vocab_words=40))
    with pytest.raises(CaptionerError, match=r"d\.pt cannot join .*: their encoders differ \(.*image_size 96 vs 64"):
        Captioner.ensemble([two_models[0], other_size], ["a.pt", "d.pt"])
    with pytest.raises(CaptionerError, match="not one model file"):
        Captioner.ensemble(two_models, ["a.pt", "b.pt"]).save(tmp_path / "ensemble.pt")


def test_caption_cli_takes_several_checkpoints_as_one_ensemble(tmp_path, capsys):
    torch.manual_seed(0)
    paths = [write_model_file(tmp_path / f"{name}.pt", TINY_ENCODER, TINY_DECODER, vocab_words=40) for name in "ab"]
    image = tmp_path / "photo.png"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(image)
    code = main(["caption", str(image), "--checkpoint", str(paths[0]), "--checkpoint", str(paths[1]), "--beam", "2"])
    assert code == 0
    [expected] = Captioner.ensemble([Captioner.load(p) for p in paths], paths).caption(image, beam_size=2)
    assert capsys.readouterr().out.strip() == expected.text
