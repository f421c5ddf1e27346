"""Attention correctness: the share of an attention map's mass that falls inside an object's box.

`coverage_mass` takes a region map from `captioner.grid.GridGeometry.coverage` (an encoder's exact geometry).
The `box_mass` family assumes the simple case: the grid is the image split into h rows × w columns of equal
cells, flattened row-major (the order of `(B, C, h, w) → (B, h·w, C)`). A cell partly inside the box counts by
the fraction of its area inside.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np

from captioner.grid import Box, GridGeometry


def _as_array(alpha: Any) -> np.ndarray:
    if hasattr(alpha, "detach"):  # a torch.Tensor, without importing torch here
        alpha = alpha.detach().float().cpu().numpy()
    return np.asarray(alpha, dtype=np.float64).reshape(-1)


def cell_overlap(grid_size: tuple[int, int], box: Box, image_size: tuple[int, int]) -> np.ndarray:
    """Fraction of each grid cell's area inside the box, flattened row-major: (h·w,)."""
    rows, cols = grid_size
    if rows < 1 or cols < 1 or image_size[0] <= 0 or image_size[1] <= 0:
        raise ValueError(f"bad grid {grid_size} or image size {image_size}")
    return GridGeometry.tiling(grid_size).coverage([box], image_size)


def coverage_mass(alpha: Any, coverage: np.ndarray) -> float:
    """Share of the attention map `alpha` (L,) on the region whose per-location coverage is `coverage` (L,)."""
    weights = _as_array(alpha)
    if weights.size != coverage.size:
        raise ValueError(f"attention has {weights.size} locations but the region map has {coverage.size}")
    total = weights.sum()
    if not total > 0:
        raise ValueError("attention weights sum to zero")
    return float((weights * coverage).sum() / total)


def box_mass(alpha: Any, grid_size: tuple[int, int], box: Box, image_size: tuple[int, int]) -> float:
    """Share of the attention map `alpha` (L,) = (h·w,) that lies inside `box`, in [0, 1]."""
    weights = _as_array(alpha)
    if weights.size != grid_size[0] * grid_size[1]:
        raise ValueError(f"attention has {weights.size} locations but the grid is {grid_size[0]}×{grid_size[1]}")
    return coverage_mass(weights, cell_overlap(grid_size, box, image_size))


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
