"""Shared test helpers: generated shapes data, the tiny configs pointed at it, and a few seconds of decoder training."""

from pathlib import Path

import torch

from captioner.config import RunConfig, load_config
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.decoding import Generation
from captioner.models.losses import caption_loss
from captioner.text import Vocabulary

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tiny_caption_config(shapes: Path, out_dir: Path, *overrides: str) -> RunConfig:
    return load_config(
        CONFIGS / "caption_tiny.yaml",
        [
            f"data.train_annotations={shapes / 'captions_train.json'}",
            f"data.val_annotations={shapes / 'captions_val.json'}",
            f"data.images_dir={shapes / 'images'}",
            f"trainer.out_dir={out_dir}",
            *overrides,
        ],
    )


def fit_captions(decoder: CaptionDecoder, features: torch.Tensor, captions: torch.Tensor, steps: int) -> CaptionDecoder:
    """Teacher-forced cross-entropy (Adam, lr 1e-2) on one batch: features (B, L, C), captions (B, T+1)."""
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = caption_loss(decoder, decoder(features, captions), captions)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return decoder


def assert_generation_matches_scoring(decoder: torch.nn.Module, features: torch.Tensor, out: Generation,
                                      length_penalty: float = 0.0) -> None:
    """Each caption a search returned for features (B, L, C) has the score and attention maps that scoring it with
    teacher forcing gives (`score_captions`): log p summed, divided by length ** length_penalty as beams rank."""
    for i, (tokens, finished) in enumerate(zip(out.tokens, out.finished)):
        ended = [Vocabulary.end_id] if finished else []
        caption = torch.tensor([[Vocabulary.start_id, *tokens, *ended]])  # (1, T+1)
        log_p, alphas = decoder.score_captions(features[i : i + 1], caption)  # (1, T), (1, T, L)
        length = caption.size(1) - 1  # generated words, <end> included
        torch.testing.assert_close(out.scores[i], log_p.sum() / length**length_penalty, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.alphas[i], alphas[0])  # the attention history follows its beam
