"""Attention figures in the style of Show, Attend and Tell: the image, then one panel per word with its map.

Uses matplotlib's object API with the Agg canvas (no pyplot global state, so it is thread-safe),
imported lazily inside the functions so that importing this module stays cheap.
"""

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from captioner.files import write_atomic
from captioner.grid import Box, GridGeometry

if TYPE_CHECKING:
    from captioner.data.boxes import ImageBoxes

PANEL_INCHES = 2.2  # one panel per word, as in the paper's figures
OUTLINE = "#ff00ff"  # labelled boxes of the category a word names: a colour photos and the overlay rarely have
DPI = 100
MAX_SIDE = 2 * int(PANEL_INCHES * DPI)  # images are shrunk to this before drawing: big photos stay fast


def upsample_attention(
    alpha: np.ndarray,
    grid_size: tuple[int, int],
    image_size: tuple[int, int],
    smooth: bool = True,
    extent: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """α (L,) over an h×w grid (row-major, as `flatten(2)`) → (H, W) map in [0, 1] at the image size (W, H).

    smooth=True upsamples bicubically (a soft blob, like the paper's Gaussian-blurred maps); smooth=False
    upsamples by nearest neighbour (one block per grid cell). A flat map (uniform attention) is all ones.
    extent (y, x): how far the grid reaches past the image, as a multiple of its side (`GridGeometry.extent`:
    a 260 px input's 9 cells of 32 px cover 288 px); the map is drawn over that and cut at the image edge.
    """
    h, w = grid_size
    alpha = np.nan_to_num(np.asarray(alpha, dtype=np.float32))
    if alpha.shape != (h * w,):
        raise ValueError(f"attention has shape {alpha.shape} ({alpha.size} weights) but the grid is {h}×{w}={h * w}")
    grid = Image.fromarray(alpha.reshape(h, w), mode="F")  # (L,) → (h, w), row-major
    resample = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    width, height = image_size
    reach = (max(width, round(width * extent[1])), max(height, round(height * extent[0])))
    values = np.asarray(grid.resize(reach, resample), dtype=np.float32)[:height, :width]  # (H, W)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-6 * max(abs(high), abs(low), 1e-12):
        return np.ones_like(values)
    return (values - low) / (high - low)


def overlay_attention(pixels: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image and (H, W) map in [0, 1] → the image dimmed where attention is low, lit where high."""
    heat = heat[..., None]  # (H, W) → (H, W, 1)
    lit = pixels.astype(np.float32) * (0.2 + 0.8 * heat)
    glow = lit + 0.55 * heat**1.5 * (255.0 - lit)  # a white glow on the peak, as in the paper's figures
    return glow.clip(0, 255).astype(np.uint8)


def caption_attention_figure(
    image: Image.Image,
    words: list[str],
    alphas: np.ndarray,
    grid_size: tuple[int, int],
    out_path: str | Path,
    columns: int = 5,
    *,
    extent: tuple[float, float] = (1.0, 1.0),
    outlines: Sequence[Sequence[Box]] | None = None,
) -> Path:
    """PNG: the image, then one panel per word (plus <end> when alphas has its row) with the attention overlaid.

    alphas is (T, L) with T == len(words) or len(words) + 1 and L == h·w of grid_size; extent as in
    `upsample_attention`. outlines: per word, boxes (x, y, w, h in pixels of `image`) outlined on its panel.
    """
    alphas = _check_maps(np.asarray(alphas, dtype=np.float32), grid_size, what="alphas")
    if len(alphas) not in (len(words), len(words) + 1):
        raise ValueError(f"{len(alphas)} attention maps for {len(words)} words: expected {len(words)} or {len(words) + 1}")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    labels = _labels(words, alphas)
    pixels = _display_pixels(image)
    panels = [(pixels, "")] + [(_overlay(pixels, a, grid_size, extent), word) for word, a in zip(labels, alphas)]
    columns = min(columns, len(panels))
    title = textwrap.fill(" ".join(words), width=12 * columns)
    figure = _figure(-(-len(panels) // columns), columns, _aspect(pixels), title.count("\n") + 1)
    axes = _draw_panels(figure, panels, columns)
    scale = pixels.shape[1] / image.size[0]  # image pixels → displayed pixels
    for ax, boxes in zip(axes[1:], outlines or []):
        _outline(ax, boxes, scale)
    figure.suptitle(title, fontsize=14)
    return _save(figure, out_path)


def write_caption_attention(
    image: Image.Image,
    words: list[str],
    alphas: np.ndarray,
    geometry: GridGeometry,
    out_path: str | Path,
    boxes: "ImageBoxes | None" = None,
) -> Path:
    """The caption's attention figure, placed on the image as the encoder's geometry says, and beside it (same
    name, .json) the raw maps: {"words", "grid": [h, w], "attention": (T, L) rows}. With the image's labelled
    boxes, each word's panel outlines the boxes of the category it names."""
    outlines = boxes.word_boxes(words, image.size) if boxes is not None else None
    out = caption_attention_figure(image, words, alphas, geometry.grid_size, out_path, extent=geometry.extent, outlines=outlines)
    maps = {"words": _labels(words, alphas), "grid": list(geometry.grid_size),
            "attention": np.round(np.asarray(alphas, dtype=np.float64), 6).tolist()}
    _save_text(json.dumps(maps), out.with_suffix(".json"))
    return out


def _labels(words: list[str], alphas: np.ndarray) -> list[str]:
    return list(words) + ["<end>"] * (len(alphas) - len(words))


def _outline(ax, boxes: Sequence[Box], scale: float) -> None:
    from matplotlib.patches import Rectangle

    for x, y, w, h in boxes:
        ax.add_patch(Rectangle((x * scale, y * scale), w * scale, h * scale, fill=False, edgecolor=OUTLINE, linewidth=2))


def question_attention_figure(
    image: Image.Image,
    question: str,
    answers: list[tuple[str, float]],
    alpha: np.ndarray,
    grid_size: tuple[int, int],
    out_path: str | Path,
) -> Path:
    """PNG: the image and one attention overlay per glimpse; the question as title, top answers beneath.

    alpha is (L,) for one glimpse or (G, L) for G glimpses, with L == h·w of grid_size.
    """
    glimpses = _check_maps(np.atleast_2d(np.asarray(alpha, dtype=np.float32)), grid_size, what="alpha")  # (G, L)
    pixels = _display_pixels(image)
    names = ["attention"] if len(glimpses) == 1 else [f"glimpse {g + 1}" for g in range(len(glimpses))]
    panels = [(pixels, "")] + [(_overlay(pixels, a, grid_size), name) for name, a in zip(names, glimpses)]
    title = textwrap.fill(question, width=30 * len(panels))
    figure = _figure(1, len(panels), _aspect(pixels), title.count("\n") + 1.5, inches=3.0)  # + the answers line
    _draw_panels(figure, panels, len(panels))
    figure.suptitle(title, fontsize=14)
    ranked = "   ".join(f"{answer} ({p:.0%})" for answer, p in answers[:5])
    figure.supxlabel(f"answers: {ranked}" if ranked else "no answers", fontsize=12)
    return _save(figure, out_path)


def _check_maps(maps: np.ndarray, grid_size: tuple[int, int], what: str) -> np.ndarray:
    """(N, L) maps, or a ValueError naming the shapes when L is not h·w."""
    h, w = grid_size
    if maps.ndim != 2 or maps.shape[-1] != h * w:
        raise ValueError(f"{what} has shape {maps.shape} but the {h}×{w} grid needs {h * w} weights per attention map")
    return maps


def _display_pixels(image: Image.Image) -> np.ndarray:
    small = image.convert("RGB")
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC)  # in place, keeps the aspect ratio
    return np.asarray(small)  # (H, W, 3) uint8


def _aspect(pixels: np.ndarray) -> float:
    height, width = pixels.shape[:2]
    return min(max(height / width, 0.25), 4.0)  # extreme panoramas still get a usable panel


def _overlay(pixels: np.ndarray, alpha: np.ndarray, grid_size: tuple[int, int], extent: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    height, width = pixels.shape[:2]
    return overlay_attention(pixels, upsample_attention(alpha, grid_size, (width, height), extent=extent))


def _figure(rows: int, columns: int, aspect: float, title_lines: float, inches: float = PANEL_INCHES):
    """A blank figure sized for rows×columns panels of height/width `aspect`, each with a one-line title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = rows * (inches * aspect + 0.35) + 0.3 * title_lines + 0.1
    figure = Figure(figsize=(columns * inches, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _draw_panels(figure, panels: list[tuple[np.ndarray, str]], columns: int) -> list:
    """Draw the panels row by row; returns their axes, in panel order."""
    rows = -(-len(panels) // columns)
    axes = figure.subplots(rows, columns, squeeze=False)  # (rows, columns)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (pixels, title) in zip(axes.flat, panels):
        ax.imshow(pixels, interpolation="antialiased")
        ax.set_title(title, fontsize=13)
    return list(axes.flat)[: len(panels)]


def _save(figure, out_path: str | Path) -> Path:
    return write_atomic(out_path, lambda tmp: figure.savefig(tmp, format="png", facecolor="white"))


def _save_text(text: str, out_path: str | Path) -> Path:
    return write_atomic(out_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
