"""Large JPEGs are decoded at a reduced scale that still covers the encoder's input, and look the same to it."""

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.data.image_files import ImageFiles
from captioner.data.images import load_image, load_image_bytes
from captioner.encoders.preprocess import Preprocess


@pytest.fixture
def photo(tmp_path):
    """A smooth 1800×1400 photo-like JPEG (gradients and a few shapes)."""
    y, x = np.mgrid[0:1400, 0:1800]
    pixels = np.stack([x * 255 // 1800, y * 255 // 1400, (x + y) * 255 // 3200], axis=-1).astype(np.uint8)
    pixels[300:700, 400:900] = (200, 40, 40)
    path = tmp_path / "large.jpg"
    Image.fromarray(pixels).save(path, quality=92)
    return path


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_input_size(photo):
    assert load_image(photo).size == (1800, 1400)
    assert load_image(photo, 448).size == (900, 700)  # 1/2; at 1/4 the short side (350) would fall below 448
    assert load_image(photo, 224).size == (450, 350)  # 1/4
    assert load_image(photo, 1024).size == (1800, 1400)  # nothing to spare: decoded whole


def test_reduced_decoding_gives_the_encoder_nearly_the_same_pixels(photo):
    preprocess = Preprocess(448, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    whole, reduced = preprocess(load_image(photo)), preprocess(load_image(photo, 448))
    assert whole.shape == reduced.shape == (3, 448, 448)
    difference = (whole - reduced).abs() * 0.25 * 255  # back in grey levels
    assert float(difference.mean()) < 1.0 and float(difference.max()) < 40


def test_files_and_uploads_of_one_photo_decode_alike_and_other_formats_whole(photo, tmp_path):
    assert load_image_bytes(photo.read_bytes(), "upload", 448).size == (900, 700)
    png = tmp_path / "large.png"
    load_image(photo).save(png)
    assert load_image(png, 448).size == (1800, 1400)  # draft is JPEG's alone


def test_orientation_is_applied_after_a_reduced_decode(photo, tmp_path):
    image = Image.open(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    rotated = tmp_path / "rotated.jpg"
    image.save(rotated, exif=exif, quality=92)
    assert load_image(rotated, 448).size == (700, 900)


def test_the_folder_dataset_decodes_at_its_transforms_size(photo):
    files = ImageFiles([photo], Preprocess(224, (0.5,) * 3, (0.25,) * 3))
    assert files.size == 224
    index, pixels, error = files[0]
    assert index == 0 and error == "" and tuple(pixels.shape) == (3, 224, 224)


def test_a_batch_decoded_in_threads_equals_its_items_decoded_in_turn(photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    files = ImageFiles([photo, broken, photo, photo], Preprocess(64, (0.5,) * 3, (0.25,) * 3))
    batch = files.__getitems__([3, 1, 0])  # what a DataLoader without workers asks for: a batch's indices
    one_by_one = [files[i] for i in (3, 1, 0)]
    assert [(index, error) for index, _, error in batch] == [(index, error) for index, _, error in one_by_one]
    assert batch[1][1] is None and "broken.jpg" in batch[1][2]
    assert all(torch.equal(a, b) for (_, a, _), (_, b, _) in zip(batch, one_by_one) if a is not None)
