"""Attention figures in the style of Show, Attend and Tell: the image, then one panel per word with its map.

Uses matplotlib's object API with the Agg canvas (no pyplot global state), imported lazily.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def upsample_attention(alpha: np.ndarray, grid_size: tuple[int, int], image_size: tuple[int, int], smooth: bool = True) -> np.ndarray:
    """α (L,) over an h×w grid (row-major, as `flatten(2)`) → (H, W) map in [0, 1] at the image size (W, H)."""
    h, w = grid_size
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.shape != (h * w,):
        raise ValueError(f"attention has {alpha.size} weights but the grid is {h}×{w}={h * w}")
    grid = Image.fromarray(alpha.reshape(h, w))  # (h, w) float image
    resample = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    values = np.asarray(grid.resize(image_size, resample), dtype=np.float32)  # (H, W)
    values = values - values.min()
    return values / values.max() if values.max() > 0 else values


def _figure(rows: int, columns: int, inches: float = 2.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(columns * inches, rows * inches * 1.1), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _panel(figure, rows: int, columns: int, index: int, image: np.ndarray, heat: np.ndarray | None, title: str):
    ax = figure.add_subplot(rows, columns, index)
    if heat is not None:  # as in the paper's figures: bright where the word looked, dimmed elsewhere
        image = (image.astype(np.float32) * (0.15 + 0.85 * heat[..., None]) + 60 * heat[..., None]).clip(0, 255).astype(np.uint8)
    ax.imshow(image)
    ax.set_title(title, fontsize=12)
    ax.set_axis_off()
    return ax


def _save(figure, out_path: str | Path) -> Path:
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".png")
    os.close(fd)
    try:
        figure.savefig(tmp, format="png", bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def caption_attention_figure(
    image: Image.Image, words: list[str], alphas: np.ndarray, grid_size: tuple[int, int], out_path: str | Path, columns: int = 5
) -> Path:
    """PNG: the image, then one panel per word (plus <end> when alphas has its row) with the attention overlaid."""
    alphas = np.asarray(alphas)
    if len(alphas) not in (len(words), len(words) + 1):
        raise ValueError(f"{len(alphas)} attention maps for {len(words)} words")
    labels = list(words) + (["<end>"] if len(alphas) == len(words) + 1 else [])
    pixels = np.asarray(image.convert("RGB"))
    rows = -(-(len(labels) + 1) // columns)
    figure = _figure(rows, columns)
    _panel(figure, rows, columns, 1, pixels, None, "")
    for k, (label, alpha) in enumerate(zip(labels, alphas), start=2):
        _panel(figure, rows, columns, k, pixels, upsample_attention(alpha, grid_size, image.size), label)
    figure.suptitle(" ".join(words), fontsize=13)
    return _save(figure, out_path)


def question_attention_figure(
    image: Image.Image, question: str, answers: list[tuple[str, float]], alpha: np.ndarray, grid_size: tuple[int, int], out_path: str | Path
) -> Path:
    """PNG: the image and one attention overlay per glimpse; the question and top answers as titles."""
    glimpses = np.atleast_2d(np.asarray(alpha))  # (G, L)
    pixels = np.asarray(image.convert("RGB"))
    columns = 1 + len(glimpses)
    figure = _figure(1, columns, inches=3.0)
    _panel(figure, 1, columns, 1, pixels, None, "")
    for g, weights in enumerate(glimpses, start=2):
        _panel(figure, 1, columns, g, pixels, upsample_attention(weights, grid_size, image.size), f"glimpse {g - 1}")
    ranked = ", ".join(f"{a} ({p:.0%})" for a, p in answers[:3])
    figure.suptitle(f"{question}\n{ranked}", fontsize=12)
    return _save(figure, out_path)
