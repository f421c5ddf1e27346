"""Attention correctness: the share of an attention map's mass that falls inside an object's box.

The grid of L = h·w locations is the image split into h rows × w columns of equal cells, flattened row-major (the
order of `(B, C, h, w) → (B, h·w, C)`). A cell partly inside the box counts by the fraction of its area inside.
Boxes and image sizes are in pixels of the image the grid covers (after any resize/crop the encoder applied).
"""

from collections.abc import Iterable
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]  # (x, y, width, height) in pixels, COCO style


def _as_array(alpha: Any) -> np.ndarray:
    if hasattr(alpha, "detach"):  # a torch.Tensor, without importing torch here
        alpha = alpha.detach().float().cpu().numpy()
    return np.asarray(alpha, dtype=np.float64).reshape(-1)


def _overlap_1d(start: float, length: float, cells: int, extent: float) -> np.ndarray:
    """Fraction of each of `cells` equal intervals of [0, extent] covered by [start, start + length]."""
    edges = np.linspace(0.0, extent, cells + 1)  # (cells + 1,)
    lo = np.clip(start, edges[:-1], edges[1:])
    hi = np.clip(start + length, edges[:-1], edges[1:])
    return (hi - lo) / (edges[1:] - edges[:-1])  # (cells,)


def cell_overlap(grid_size: tuple[int, int], box: Box, image_size: tuple[int, int]) -> np.ndarray:
    """Fraction of each grid cell's area inside the box, flattened row-major: (h·w,)."""
    rows, cols = grid_size
    width, height = image_size
    x, y, w, h = box
    if rows < 1 or cols < 1 or width <= 0 or height <= 0:
        raise ValueError(f"bad grid {grid_size} or image size {image_size}")
    fx = _overlap_1d(x, max(w, 0.0), cols, width)  # (w_cells,)
    fy = _overlap_1d(y, max(h, 0.0), rows, height)  # (h_cells,)
    return np.outer(fy, fx).reshape(-1)  # (h, w) → (h·w,)


def box_mass(alpha: Any, grid_size: tuple[int, int], box: Box, image_size: tuple[int, int]) -> float:
    """Share of the attention map `alpha` (L,) = (h·w,) that lies inside `box`, in [0, 1]."""
    weights = _as_array(alpha)
    if weights.size != grid_size[0] * grid_size[1]:
        raise ValueError(f"attention has {weights.size} locations but the grid is {grid_size[0]}×{grid_size[1]}")
    total = weights.sum()
    if not total > 0:
        raise ValueError("attention weights sum to zero")
    return float((weights * cell_overlap(grid_size, box, image_size)).sum() / total)


def uniform_box_mass(grid_size: tuple[int, int], box: Box, image_size: tuple[int, int]) -> float:
    """`box_mass` of uniform attention: the box's share of the image area (the chance baseline)."""
    return box_mass(np.ones(grid_size[0] * grid_size[1]), grid_size, box, image_size)


def attention_correctness(items: Iterable[tuple[Any, tuple[int, int], Box, tuple[int, int]]]) -> dict:
    """Mean box mass of `(alpha, grid_size, box, image_size)` items beside the uniform-attention baseline."""
    masses, baselines = [], []
    for alpha, grid_size, box, image_size in items:
        masses.append(box_mass(alpha, grid_size, box, image_size))
        baselines.append(uniform_box_mass(grid_size, box, image_size))
    if not masses:
        return {"mean_mass": float("nan"), "uniform_baseline": float("nan"), "n": 0}
    return {"mean_mass": float(np.mean(masses)), "uniform_baseline": float(np.mean(baselines)), "n": len(masses)}
