"""The Up-Down decoder (Anderson et al. 2018): same step API and teacher forcing as Show, Attend and Tell."""

import json

import pytest
import torch

from captioner.errors import CaptionerError
from captioner.inference import Captioner
from captioner.models.caption_decoder import ARCHITECTURES, CaptionDecoder, DecoderConfig
from captioner.models.decoders import DECODERS, build_decoder
from captioner.models.decoding import beam_search, generate
from captioner.models.up_down import UpDownDecoder
from captioner.training.runner import train
from helpers import assert_generation_matches_scoring, fit_captions, tiny_caption_config

CAPTIONS = torch.tensor([[1, 5, 6, 7, 2, 0], [1, 8, 9, 2, 0, 0], [1, 10, 11, 12, 13, 2]])
L, C = 9, 16


def up_down(seed: int = 0, scale: float = 1.0, **overrides) -> UpDownDecoder:
    """Random weights; scaled ×3, captions end at different steps (as in tests/test_decoding.py)."""
    torch.manual_seed(seed)
    config = dict(architecture="up_down", vocab_size=20, feature_dim=C, embed_dim=32, hidden_dim=64, attention_dim=32,
                  memory_dim=24, dropout=0.0)
    decoder = build_decoder(DecoderConfig(**{**config, **overrides}))
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.mul_(scale)
    return decoder


def features(batch: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, L, C, generator=torch.Generator().manual_seed(seed))


def test_the_architecture_picks_the_decoder_class():
    assert set(DECODERS.names()) == set(ARCHITECTURES)
    assert type(up_down()) is UpDownDecoder
    assert type(build_decoder(DecoderConfig(vocab_size=20, feature_dim=C))) is CaptionDecoder  # the default
    with pytest.raises(ValueError, match="architecture must be one of"):
        DecoderConfig(architecture="transformer", vocab_size=20, feature_dim=C)
    with pytest.raises(ValueError, match="up_down has its two LSTMs"):
        DecoderConfig(architecture="up_down", num_layers=2, vocab_size=20, feature_dim=C)


@pytest.mark.parametrize("options", [{}, {"cell": "gru"}, {"memory_dim": None, "deep_output": False}, {"attention": "hard"}])
def test_teacher_forcing_shapes_and_attention_rows_sum_to_one(options):
    out = up_down(**options)(features(), CAPTIONS)
    assert out.logits.shape == (3, 5, 20) and out.alphas.shape == (3, 5, L)
    torch.testing.assert_close(out.alphas.sum(-1), (CAPTIONS[:, 1:] != 0).float())  # zero at padded steps


def test_captions_sharing_an_image_through_owners_match_one_grid_per_caption():
    decoder, grids = up_down().eval(), features(batch=2)
    owners = torch.tensor([0, 1, 0])
    shared, copied = decoder(grids, CAPTIONS, owners=owners), decoder(grids[owners], CAPTIONS)
    torch.testing.assert_close(shared.logits, copied.logits)
    torch.testing.assert_close(shared.alphas, copied.alphas)


@pytest.mark.parametrize("strategy, options", [("greedy", {}), ("beam", {"beam_size": 3, "length_penalty": 0.0})])
def test_generation_scores_and_attention_match_teacher_forcing(strategy, options):
    decoder, grids = up_down(seed=2, scale=3.0).eval(), features(batch=4, seed=3)
    assert_generation_matches_scoring(decoder, grids, generate(decoder, grids, strategy, max_len=8, **options))


def test_batched_beam_search_matches_one_image_at_a_time():
    decoder, grids = up_down(seed=2, scale=3.0).eval(), features(batch=4, seed=3)
    batched = beam_search(decoder, grids, beam_size=3, max_len=8)
    for i in range(4):
        alone = beam_search(decoder, grids[i : i + 1], beam_size=3, max_len=8)
        assert alone.tokens[0] == batched.tokens[i]
        torch.testing.assert_close(alone.scores[0], batched.scores[i])


def test_up_down_memorises_a_few_captions():
    decoder, grids = up_down(), features()
    fit_captions(decoder, grids, CAPTIONS, steps=150)
    assert generate(decoder, grids, "greedy", max_len=6).tokens == [[5, 6, 7], [8, 9], [10, 11, 12, 13]]


def test_an_up_down_model_trains_saves_and_captions(shapes, tmp_path):
    config = tiny_caption_config(shapes, tmp_path / "run", "model.architecture=up_down", "trainer.limit_train_batches=2",
                                 "trainer.limit_val_batches=1")
    captioner = Captioner.load(train(config).model_path)
    assert type(captioner.decoder) is UpDownDecoder
    image = shapes / "images" / json.loads((shapes / "captions_val.json").read_text())["images"][0]["file_name"]
    caption = captioner.caption([image], beam_size=2)[0]
    assert caption.alphas.shape[1] == captioner.encoder.num_locations


def test_a_model_file_cannot_switch_architecture(shapes, tmp_path):
    config = tiny_caption_config(shapes, tmp_path / "run", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1")
    model = train(config).model_path
    with pytest.raises(CaptionerError, match="architecture"):
        train(tiny_caption_config(shapes, tmp_path / "scst", "training.objective=scst", f"training.init_from={model}",
                                  "model.architecture=up_down", "trainer.max_epochs=1"))
