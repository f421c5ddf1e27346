"""Where grid cells lie on the image: the geometry the grounding metric, supervision targets and figures share."""

import numpy as np
import pytest
import torch

from captioner.encoders import build_encoder
from captioner.evaluation.attention import coverage_mass
from captioner.grid import GridGeometry

LITE0 = GridGeometry((224, 224), 32)  # EfficientNet-Lite0 at 224 px: a 7×7 grid of 32 px cells


def one_hot(row: int, col: int, grid: tuple[int, int] = (7, 7)) -> np.ndarray:
    alpha = np.zeros(grid)
    alpha[row, col] = 1.0
    return alpha.reshape(-1)  # (h, w) → (L,), row-major like the encoder's grid


def test_mass_exactly_inside_and_exactly_outside():
    region = LITE0.coverage([(64, 32, 96, 96)], (224, 224))  # columns 2–4, rows 1–3
    assert coverage_mass(one_hot(2, 3), region) == 1.0
    assert coverage_mass(one_hot(5, 3), region) == 0.0
    assert coverage_mass(one_hot(1, 2) + one_hot(6, 6), region) == 0.5


def test_half_covered_cells_count_half():
    region = LITE0.coverage([(16, 0, 64, 32)], (224, 224)).reshape(7, 7)  # right half of (0,0), (0,1), left half of (0,2)
    assert region[0, :3] == pytest.approx([0.5, 1.0, 0.5]) and region.sum() == pytest.approx(2.0)
    assert coverage_mass(one_hot(0, 0), region.reshape(-1)) == pytest.approx(0.5)


def test_boxes_are_in_the_pixels_of_the_image_before_resizing():
    # A 640×320 photo is squeezed to 224×224: its left half is columns 0–3.5 of the grid.
    region = LITE0.coverage([(0, 0, 320, 320)], (640, 320)).reshape(7, 7)
    assert region[:, :3] == pytest.approx(np.ones((7, 3)))
    assert region[:, 3] == pytest.approx(np.full(7, 0.5)) and region[:, 4:].sum() == 0
    assert region.mean() == pytest.approx(0.5)  # uniform attention: the boxes' area share


def test_the_union_of_overlapping_boxes_counts_once():
    region = LITE0.coverage([(0, 0, 64, 32), (32, 0, 64, 32)], (224, 224)).reshape(7, 7)
    assert region[0, :3] == pytest.approx([1.0, 1.0, 1.0]) and region.sum() == pytest.approx(3.0)
    assert LITE0.coverage([], (224, 224)).sum() == 0.0


def test_a_grid_that_is_not_square():
    geometry = GridGeometry((96, 128), 32)  # 3 rows × 4 columns
    assert geometry.grid_size == (3, 4)
    region = geometry.coverage([(0, 0, 160, 60)], (320, 240)).reshape(3, 4)  # x 0–64, y 0–24 of the resized input
    assert region == pytest.approx(np.array([[0.75, 0.75, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    assert GridGeometry.tiling((3, 4)).coverage([(0, 0, 160, 60)], (320, 240)) == pytest.approx(region.reshape(-1))


def test_last_cells_past_the_image_edge_count_only_their_image_part():
    geometry = GridGeometry((260, 260), 32)  # 9 cells of 32 px = 288 px: the last ones hold 4 px of image
    assert geometry.grid_size == (9, 9) and geometry.extent == pytest.approx((288 / 260, 288 / 260))
    region = geometry.coverage([(256, 0, 4, 260)], (260, 260)).reshape(9, 9)  # the last 4 px column of the image
    assert region[:, 8] == pytest.approx(np.ones(9)) and region[:, :8].sum() == 0
    region = geometry.coverage([(0, 0, 130, 260)], (520, 260)).reshape(9, 9)  # the left quarter: x 0–65 resized
    assert region[0, :3] == pytest.approx([1.0, 1.0, 1 / 32])


def test_pooled_grids_average_their_raw_cells_like_the_encoder():
    geometry = GridGeometry((224, 224), 32, pool=(3, 3))  # 7×7 pooled to 3×3: overlapping bins
    boxes = [(20, 40, 100, 70), (150, 150, 60, 30)]
    raw = torch.from_numpy(GridGeometry((224, 224), 32).coverage(boxes, (224, 224)).reshape(1, 1, 7, 7))
    expected = torch.nn.AdaptiveAvgPool2d(3)(raw).reshape(-1).numpy()
    assert geometry.coverage(boxes, (224, 224)) == pytest.approx(expected)


def test_the_encoder_describes_its_own_geometry():
    encoder = build_encoder("tiny_cnn", pretrained=False, image_size=72)  # stride 16: ceil(72 / 16) = 5
    assert encoder.geometry == GridGeometry((72, 72), 16)
    features = encoder(torch.zeros(1, 3, 72, 72))  # (1, L, C)
    assert features.shape[1] == 25 and encoder.geometry.grid_size == encoder.grid_size == (5, 5)
    pooled = build_encoder("tiny_cnn", pretrained=False, image_size=64, pool_size=2)
    assert pooled.geometry == GridGeometry((64, 64), 16, (2, 2))


def test_coverage_matches_counting_pixels_of_the_resized_image():
    rng = np.random.default_rng(0)
    for geometry in (LITE0, GridGeometry((100, 150), 32)):  # last cells full, or holding 4 and 22 px of image
        rows, cols = geometry.input_size
        boxes = [(int(rng.integers(-20, cols)), int(rng.integers(-20, rows)), int(rng.integers(1, 90)), int(rng.integers(1, 90))) for _ in range(4)]
        mask = np.zeros((geometry.raw_size[0] * 32, geometry.raw_size[1] * 32))  # the padded canvas
        for x, y, w, h in boxes:
            mask[max(y, 0) : max(min(y + h, rows), 0), max(x, 0) : max(min(x + w, cols), 0)] = 1
        inside = np.zeros_like(mask)
        inside[:rows, :cols] = 1  # what of each cell is image
        cells = lambda a: a.reshape(geometry.raw_size[0], 32, geometry.raw_size[1], 32).sum(axis=(1, 3))  # (h, w)
        expected = (cells(mask) / cells(inside)).reshape(-1)
        assert geometry.coverage(boxes, (cols, rows)) == pytest.approx(expected)
