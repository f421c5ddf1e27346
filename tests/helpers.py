"""Shared test helpers: generated shapes data, the tiny configs pointed at it, and a few seconds of decoder training."""

from pathlib import Path

import torch

from captioner.config import RunConfig, load_config
from captioner.models.caption_decoder import CaptionDecoder
from captioner.models.losses import caption_loss

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
