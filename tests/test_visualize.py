import numpy as np
import pytest
from PIL import Image

from captioner.visualize import caption_attention_figure, question_attention_figure, upsample_attention


def test_upsampled_map_is_brightest_where_the_grid_cell_is():
    alpha = np.zeros(12)
    alpha[3] = 1.0  # row 0, last column of a 3×4 grid
    heat = upsample_attention(alpha, (3, 4), (80, 60), smooth=False)
    assert heat.shape == (60, 80)
    assert heat[:20, 60:].min() == 1.0 and heat[20:, :].max() == 0.0


def test_caption_figure_has_an_end_panel_and_is_a_png(tmp_path):
    image = Image.new("RGB", (64, 48), "white")
    alphas = np.full((4, 6), 1 / 6)  # three words + <end>
    out = caption_attention_figure(image, ["a", "red", "circle"], alphas, (2, 3), tmp_path / "sub" / "fig.png")
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > 400
    assert list(out.parent.iterdir()) == [out]


def test_question_figure_with_two_glimpses(tmp_path):
    image = Image.new("RGB", (32, 32), "white")
    out = question_attention_figure(image, "what color is the circle?", [("red", 0.9)], np.full((2, 4), 0.25), (2, 2), tmp_path / "q.png")
    assert out.stat().st_size > 1000


def test_mismatched_attention_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="5 weights but the grid is 2×2=4"):
        upsample_attention(np.ones(5), (2, 2), (8, 8))
    with pytest.raises(ValueError, match="1 attention maps for 3 words"):
        caption_attention_figure(Image.new("RGB", (8, 8)), ["a", "b", "c"], np.ones((1, 4)), (2, 2), tmp_path / "x.png")
