"""Shared test helpers: generated shapes data and the tiny configs pointed at it."""

from pathlib import Path

from captioner.config import RunConfig, load_config

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
