"""Where an encoder's grid cells lie on the image: the one place that maps image pixels onto grid locations.

An encoder resizes the whole image to its input size (no crop, aspect ratio not kept), then its stride-s trunk
gives one raw cell per s×s pixels of the resized image; with 'same' padding the raw grid has ceil(S / s) cells
per side, so the last row/column may reach past the image (a 260 px input: 9 cells of 32 px = 288 px). An
adaptive average pool, when set, averages bins of raw cells into the final grid. Locations are flattened row-major,
the order of `(B, C, h, w) → (B, h·w, C)`.

A cell's coverage by a set of boxes is the share of the cell's *image* content inside their union: the part of a
last cell past the image edge is padding and does not count; a pooled cell averages the coverage of its raw
cells, as the pool averages their features. Used by the grounding metric, the supervision targets and figures.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # (x, y, width, height) in pixels of the image, COCO style


@dataclass(frozen=True)
class GridGeometry:
    """input_size: (height, width) the encoder resizes images to; stride: resized pixels per raw cell;
    pool: (h, w) of an adaptive average pool over the raw grid, or None."""

    input_size: tuple[int, int]
    stride: int
    pool: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if min(self.input_size) < 1 or self.stride < 1 or (self.pool is not None and min(self.pool) < 1):
            raise ValueError(f"bad grid geometry: input {self.input_size}, stride {self.stride}, pool {self.pool}")

    @classmethod
    def tiling(cls, grid_size: tuple[int, int]) -> "GridGeometry":
        """A grid of equal cells that exactly tile the image (what a 224 px input with stride 32 gives)."""
        return cls(tuple(grid_size), 1)

    @property
    def raw_size(self) -> tuple[int, int]:
        """(h, w) of the trunk's grid before pooling: ceil(input / stride), as 'same'-padded convs round up."""
        return tuple(-(-side // self.stride) for side in self.input_size)

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.pool or self.raw_size

    @property
    def extent(self) -> tuple[float, float]:
        """How far the raw grid reaches, per axis (y, x), as a multiple of the image side (≥ 1)."""
        return tuple(cells * self.stride / side for cells, side in zip(self.raw_size, self.input_size))

    def coverage(self, boxes: Sequence[Box], image_size: tuple[float, float]) -> np.ndarray:
        """Share of each location's image content inside the union of `boxes` (pixels of an image of
        `image_size` = (width, height)): (L,) in [0, 1], row-major."""
        width, height = image_size
        if width <= 0 or height <= 0:
            raise ValueError(f"bad image size {image_size}")
        rows, cols = self.input_size
        scale = np.array([cols / width, rows / height] * 2)  # pixels of the image → pixels of the resized input
        scaled = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale  # (n, 4)
        x0, y0 = scaled[:, 0], scaled[:, 1]
        x1, y1 = x0 + scaled[:, 2].clip(min=0), y0 + scaled[:, 3].clip(min=0)
        raw = _union_cell_share((x0, x1), (y0, y1), self.stride, (rows, cols))  # (raw_h, raw_w)
        if self.pool is not None:
            raw = _pooling(self.raw_size[0], self.pool[0]) @ raw @ _pooling(self.raw_size[1], self.pool[1]).T
        return raw.reshape(-1)  # (h, w) → (h·w,)


def _union_cell_share(xs: tuple, ys: tuple, stride: int, size: tuple[int, int]) -> np.ndarray:
    """Exact area share of each raw cell's in-image part covered by the union of boxes [x0, x1) × [y0, y1)."""
    (x_share, x_cells), (y_share, y_cells) = _axis(*xs, stride, size[1]), _axis(*ys, stride, size[0])
    # pieces: elementary intervals between every box and cell edge, so each lies in one cell and is in or out
    covered = (y_share[:, :, None] & x_share[:, None, :]).any(axis=0).astype(np.float64)  # (pieces_y, pieces_x)
    return y_cells @ covered @ x_cells.T  # (cells_y, pieces_y)·(pieces_y, pieces_x)·(pieces_x, cells_x)


def _axis(lo: np.ndarray, hi: np.ndarray, stride: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis: which pieces each box spans (n, pieces), and each cell's share per piece (cells, pieces)."""
    cells = -(-side // stride)
    edges = np.minimum(np.arange(cells + 1) * stride, side).astype(np.float64)  # the last cell ends at the image edge
    cuts = np.unique(np.concatenate([edges, np.clip(lo, 0, side), np.clip(hi, 0, side)]))
    middle, length = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)  # (pieces,)
    inside = (lo[:, None] <= middle) & (middle < hi[:, None])  # (n, pieces)
    owner = (np.searchsorted(edges, middle, side="right") - 1).clip(0, cells - 1)  # (pieces,): the cell each lies in
    share = np.zeros((cells, len(middle)))
    share[owner, np.arange(len(middle))] = length / np.diff(edges)[owner]
    return inside, share


def _pooling(cells: int, out: int) -> np.ndarray:
    """(out, cells) matrix of torch's adaptive average pool: bin i averages cells floor(i·n/out) … ceil((i+1)·n/out) − 1."""
    weights = np.zeros((out, cells))
    for i in range(out):
        start, end = (i * cells) // out, -(-((i + 1) * cells) // out)
        weights[i, start:end] = 1.0 / (end - start)
    return weights
