import numpy as np
import pytest
import torch

from captioner.evaluation.attention import attention_correctness, box_mass, cell_overlap, uniform_box_mass

IMAGE = (224, 224)  # (W, H)
GRID = (7, 7)  # (h, w): cells of 32×32 pixels


def one_hot(row: int, col: int, grid: tuple[int, int] = GRID) -> np.ndarray:
    alpha = np.zeros(grid)
    alpha[row, col] = 1.0
    return alpha.reshape(-1)  # (h, w) → (L,), row-major like the encoder's grid


def test_all_attention_on_a_cell_inside_the_box():
    box = (64, 32, 96, 96)  # x 64..160, y 32..128: columns 2–4, rows 1–3
    assert box_mass(one_hot(2, 3), GRID, box, IMAGE) == 1.0
    assert box_mass(one_hot(5, 3), GRID, box, IMAGE) == 0.0
    assert box_mass(torch.from_numpy(one_hot(1, 2)).float(), GRID, box, IMAGE) == 1.0  # tensors work too


def test_uniform_attention_gives_the_box_area_fraction():
    box = (10, 20, 100, 50)
    assert uniform_box_mass(GRID, box, IMAGE) == pytest.approx(100 * 50 / (224 * 224))
    # Non-square images and grids: the cells are (W / w) × (H / h) rectangles.
    assert uniform_box_mass((3, 4), (0, 0, 160, 60), (320, 240)) == pytest.approx(160 * 60 / (320 * 240))


def test_a_half_overlapping_cell_counts_half():
    box = (16, 0, 64, 32)  # covers the right half of cell (0, 0), all of (0, 1), the left half of (0, 2)
    assert box_mass(one_hot(0, 0), GRID, box, IMAGE) == pytest.approx(0.5)
    assert box_mass(one_hot(0, 2), GRID, box, IMAGE) == pytest.approx(0.5)
    overlap = cell_overlap(GRID, box, IMAGE).reshape(GRID)
    assert overlap[0, :3] == pytest.approx([0.5, 1.0, 0.5]) and overlap.sum() == pytest.approx(2.0)


def test_unnormalised_attention_and_boxes_past_the_edge():
    alpha = one_hot(0, 0) * 3 + one_hot(6, 6)  # 3/4 of the mass on the top-left cell
    assert box_mass(alpha, GRID, (-50, -50, 82, 82), IMAGE) == pytest.approx(0.75)  # clipped to the first cell
    with pytest.raises(ValueError, match="48 locations but the grid is 7×7"):
        box_mass(np.ones(48), GRID, (0, 0, 10, 10), IMAGE)


def test_attention_correctness_against_the_uniform_baseline():
    box = (0, 0, 112, 112)  # the top-left quarter
    items = [(one_hot(0, 0), GRID, box, IMAGE), (one_hot(6, 6), GRID, box, IMAGE)]
    result = attention_correctness(items)
    assert result["n"] == 2 and result["mean_mass"] == pytest.approx(0.5)
    assert result["uniform_baseline"] == pytest.approx(0.25)
    assert attention_correctness([])["n"] == 0
