"""Every kind of bad input gets a one-line error naming it; valid oddities are handled correctly."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.data.images import load_image
from captioner.errors import CaptionerError
from captioner.text import Vocabulary, tokenize


def save(path, image, **options):
    image.save(path, **options)
    return path


@pytest.fixture
def jpeg_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("empty.jpg", lambda p, j: p.write_bytes(b""), "empty file"),
        ("truncated.jpg", lambda p, j: p.write_bytes(j[: len(j) // 2]), "corrupt or truncated"),
        ("notes.jpg", lambda p, j: p.write_text("hello, I am text"), "not an image file"),
        ("missing.jpg", lambda p, j: None, "no such image file"),
    ],
)
def test_unreadable_images_are_named_in_one_line(tmp_path, jpeg_bytes, name, make, message):
    path = tmp_path / name
    make(path, jpeg_bytes)
    with pytest.raises(CaptionerError, match=message) as error:
        load_image(path)
    assert name in str(error.value) and "\n" not in str(error.value)


def test_decompression_bomb_is_refused(tmp_path):
    path = save(tmp_path / "bomb.png", Image.new("1", (30000, 30000)))
    with pytest.raises(CaptionerError, match="too large"):
        load_image(path)


@pytest.mark.parametrize(
    "mode, make",
    [
        ("cmyk", lambda: Image.new("CMYK", (20, 10), (0, 255, 255, 0))),
        ("palette", lambda: Image.new("RGB", (20, 10), (255, 0, 0)).convert("P")),
        ("rgba", lambda: Image.new("RGBA", (20, 10), (255, 0, 0, 255))),
        ("sixteen_bit", lambda: Image.fromarray(np.full((10, 20), 65535, dtype=np.uint16))),
        ("grey", lambda: Image.new("L", (20, 10), 255)),
        ("one_pixel", lambda: Image.new("RGB", (1, 1), (255, 0, 0))),
    ],
)
def test_valid_odd_images_become_rgb(tmp_path, mode, make):
    image = make()
    path = save(tmp_path / f"{mode}.{'jpg' if mode == 'cmyk' else 'png'}", image)
    rgb = load_image(path)
    assert rgb.mode == "RGB" and rgb.size == image.size
    assert rgb.getpixel((0, 0))[0] > 200  # red or white stays bright: no garbage from a wrong conversion


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = save(tmp_path / "rotated.jpg", image, exif=exif)
    assert load_image(path).size == (20, 40)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_a_traceback(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.jpg"
    path.write_bytes(data)
    try:
        assert load_image(path).mode == "RGB"
    except CaptionerError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_unicode_tokenizes_and_round_trips(text):
    tokens = tokenize(text)
    vocab = Vocabulary(sorted(set(tokens)))
    assert vocab.decode(vocab.encode(text)) == " ".join(tokens)


def test_training_skips_and_reports_an_unreadable_image_or_fails_fast(shapes, tmp_path):
    import shutil

    from captioner.training.runner import train
    from helpers import tiny_caption_config

    data = shutil.copytree(shapes, tmp_path / "shapes")
    broken = sorted((data / "images").iterdir())[0]
    broken.write_text("not an image any more")
    with pytest.warns(UserWarning, match=f"skipped unreadable image .*{broken.name}"):
        train(tiny_caption_config(data, tmp_path / "run"))  # one full epoch: every image is read
    with pytest.raises(CaptionerError, match=broken.name):
        train(tiny_caption_config(data, tmp_path / "run2", "data.fail_fast=true"))


def test_non_finite_loss_stops_training_naming_the_step():
    import torch

    from captioner.training.guards import check_finite

    assert check_finite(torch.tensor(1.5), 3) == 1.5
    with pytest.raises(CaptionerError, match="loss became nan at step 7"):
        check_finite(torch.tensor(float("nan")), 7)
