import json

import numpy as np
import pytest
from PIL import Image

from captioner.visualize import (
    caption_attention_figure,
    overlay_attention,
    question_attention_figure,
    upsample_attention,
    write_caption_attention,
)


def one_hot(index: int, size: int) -> np.ndarray:
    alpha = np.zeros(size, dtype=np.float32)
    alpha[index] = 1.0
    return alpha


def photo(width: int = 96, height: int = 64) -> Image.Image:
    """A smooth colour gradient: something an overlay visibly darkens and lights up."""
    x, y = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))  # (H, W) each
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8))  # (H, W, 3)


@pytest.mark.parametrize("smooth", [True, False])
def test_upsampled_map_is_brightest_where_the_grid_cell_is(smooth):
    h, w = 3, 4
    heat = upsample_attention(one_hot(0 * w + (w - 1), h * w), (h, w), image_size=(80, 60), smooth=smooth)
    assert heat.shape == (60, 80)  # (H, W) from image_size (W, H)
    assert heat.min() == 0.0 and heat.max() == 1.0
    row, col = np.unravel_index(heat.argmax(), heat.shape)
    assert row < 20 and col >= 60  # the top-right cell of the 3×4 grid is 20×20 pixels
    assert heat[:20, 60:].mean() > 5 * heat[20:, :60].mean()


def test_nearest_upsampling_is_blocky_and_row_major():
    heat = upsample_attention(np.arange(6), (2, 3), image_size=(6, 4), smooth=False)
    assert np.allclose(heat[:, ::2] * 5, [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]])


def test_uniform_attention_lights_the_whole_image():
    heat = upsample_attention(np.full(49, 1 / 49), (7, 7), image_size=(70, 70))
    assert np.all(heat == 1.0)


def test_overlay_dims_what_was_not_attended():
    pixels = np.asarray(photo())
    heat = np.zeros(pixels.shape[:2])
    heat[:, :48] = 1.0  # the left half was looked at
    shown = overlay_attention(pixels, heat).astype(int)
    assert (shown[:, :48] >= pixels[:, :48]).all() and (shown[:, 48:] < pixels[:, 48:] * 0.25 + 1).all()


def test_caption_figure_is_a_png_of_the_expected_size(tmp_path):
    alphas = np.random.default_rng(0).dirichlet(np.ones(6), size=4)  # (T=3 words + <end>, L=2·3)
    out = caption_attention_figure(photo(96, 96), ["a", "red", "circle"], alphas, (2, 3), tmp_path / "sub" / "fig.png")
    assert out == tmp_path / "sub" / "fig.png"
    with Image.open(out) as png:
        png.verify()
        assert png.format == "PNG"
        assert 1000 <= png.width <= 1200  # 5 panels of 2.2 in at 100 dpi
        assert 220 <= png.height <= 350  # one row: a square panel and its title
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_an_extra_attention_row_adds_an_end_panel(tmp_path):
    words = ["a", "red", "circle"]
    rng = np.random.default_rng(0)
    without_end = caption_attention_figure(photo(), words, rng.dirichlet(np.ones(4), 3), (2, 2), tmp_path / "a.png", columns=2)
    with_end = caption_attention_figure(photo(), words, rng.dirichlet(np.ones(4), 4), (2, 2), tmp_path / "b.png", columns=2)
    with Image.open(without_end) as a, Image.open(with_end) as b:
        assert a.width == b.width
        assert b.height > a.height * 1.3  # image + 3 words = 2 rows; image + 3 words + <end> = 3 rows


def test_figure_overwrites_an_existing_file(tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"old")
    caption_attention_figure(photo(), ["a"], np.ones((1, 4)), (2, 2), out)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_question_figure_with_one_or_two_glimpses(tmp_path):
    question, answers = "what color is the circle?", [("red", 0.9), ("blue", 0.05)]
    one = question_attention_figure(photo(), question, answers, one_hot(0, 4), (2, 2), tmp_path / "q1.png")
    two = question_attention_figure(photo(), question, answers, np.full((2, 4), 0.25), (2, 2), tmp_path / "q2.png")
    with Image.open(one) as a, Image.open(two) as b:
        assert a.format == b.format == "PNG"
        assert b.width - a.width >= 250  # a 3-inch panel per glimpse


def test_mismatched_attention_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"attention has shape \(5,\) \(5 weights\) but the grid is 2×2=4"):
        upsample_attention(np.ones(5), (2, 2), (8, 8))
    with pytest.raises(ValueError, match=r"alphas has shape \(3, 5\) but the 2×2 grid needs 4 weights"):
        caption_attention_figure(photo(), ["a", "b", "c"], np.ones((3, 5)), (2, 2), tmp_path / "x.png")
    with pytest.raises(ValueError, match="1 attention maps for 3 words: expected 3 or 4"):
        caption_attention_figure(photo(), ["a", "b", "c"], np.ones((1, 4)), (2, 2), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"alpha has shape \(1, 2, 4\)"):
        question_attention_figure(photo(), "what?", [], np.ones((1, 2, 4)), (2, 2), tmp_path / "q.png")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "q.png").exists()


def test_a_grid_reaching_past_the_image_is_cut_at_its_edge():
    # 260 px input, 9 cells of 32 px = 288 px: the last row holds only 4 px of image
    alpha = np.zeros((9, 9))
    alpha[8, 0] = 1.0  # the last row, first column
    heat = upsample_attention(alpha.reshape(-1), (9, 9), (260, 260), smooth=False, extent=(288 / 260, 288 / 260))
    assert heat.shape == (260, 260)
    lit = np.argwhere(heat == 1.0)  # (n, 2) rows and columns
    assert lit[:, 0].min() == 256 and lit[:, 1].max() == 31  # rows 256–259, columns 0–31


def draw_with_boxes(tmp_path, words: list[str], boxes_for: str = "man") -> tuple[np.ndarray, dict]:
    """A figure of a 128×96 photo whose person is at x 10–40: the panel of `boxes_for` outlines it."""
    from captioner.data.boxes import ImageBoxes
    from captioner.grid import GridGeometry

    labelled = ImageBoxes((256, 192), {"person": ((20, 20, 60, 120),)})  # boxes in a 2× larger copy's pixels
    alphas = np.random.default_rng(0).dirichlet(np.ones(4), size=len(words) + 1)  # (T + <end>, L = 2·2)
    out = write_caption_attention(photo(128, 96), words, alphas, GridGeometry((64, 64), 32), tmp_path / "fig.png", labelled)
    with Image.open(out) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    return pixels, json.loads(out.with_suffix(".json").read_text())


def outline_columns(pixels: np.ndarray) -> np.ndarray:
    magenta = (np.abs(pixels - [255, 0, 255]).sum(axis=-1) < 30)  # (H, W): the outline colour
    return np.flatnonzero(magenta.any(axis=0))


def test_the_panel_of_a_word_outlines_its_category_boxes(tmp_path):
    pixels, maps = draw_with_boxes(tmp_path, ["a", "man", "on", "grass"])
    width = pixels.shape[1]  # image + 4 words + <end> = 6 panels in 5 columns: "man" is the third
    columns = outline_columns(pixels)
    assert len(columns) > 10, "the outline colour must be drawn"
    assert columns.min() >= 2 * width / 5 - 10 and columns.max() <= 3 * width / 5 + 10
    nothing, _ = draw_with_boxes(tmp_path, ["a", "red", "car"])  # no word names a person: no outline
    assert len(outline_columns(nothing)) == 0


def test_the_raw_maps_are_written_beside_the_figure(tmp_path):
    _, maps = draw_with_boxes(tmp_path, ["a", "man"])
    assert maps["words"] == ["a", "man", "<end>"] and maps["grid"] == [2, 2]
    attention = np.array(maps["attention"])
    assert attention.shape == (3, 4) and np.allclose(attention.sum(axis=1), 1.0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.json", "fig.png"]


def test_boxes_for_a_picture_of_another_shape_are_refused(tmp_path):
    from captioner.data.boxes import ImageBoxes
    from captioner.errors import CaptionerError
    from captioner.grid import GridGeometry

    labelled = ImageBoxes((100, 100), {"person": ((0, 0, 10, 10),)}, "persons.json: image 7 (7.jpg)")
    with pytest.raises(CaptionerError, match=r"persons.json: image 7 \(7.jpg\): the boxes are for a 100×100 image, the one given is 128×96"):
        write_caption_attention(photo(128, 96), ["a", "man"], np.ones((2, 4)) / 4, GridGeometry((64, 64), 32), tmp_path / "f.png", labelled)
