import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from captioner.data.coco import CocoCaptions
from captioner.data.features import FeatureCache, extract_features
from captioner.data.images import load_image
from captioner.data.mirror import Mirror, mirror_caption, mirror_regions
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError
from captioner.training.datamodules import CaptionDataConfig


@pytest.fixture
def photos(tmp_path):
    """Three noisy photos (nothing in them is symmetric) and a caption file naming a side in each."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    annotations = tmp_path / "captions.json"
    annotations.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.png"} for i in (1, 2, 3)],
        "annotations": [{"image_id": i, "caption": f"a dog on the left of a bright cart {i}"} for i in (1, 2, 3)],
    }))
    return folder, annotations


def test_a_mirrored_caption_swaps_left_and_right_as_whole_words():
    assert mirror_caption("Left of the man, a dog turns right.") == "Right of the man, a dog turns left."
    assert mirror_caption("LEFT lane; a bright leftover") == "RIGHT lane; a bright leftover"


def test_mirrored_regions_reverse_each_row_of_the_grid():
    targets = np.arange(12, dtype=np.float32).reshape(2, 6)  # 2 words on a 2×3 grid
    np.testing.assert_array_equal(mirror_regions(targets, (2, 3)), [[2, 1, 0, 5, 4, 3], [8, 7, 6, 11, 10, 9]])


def test_the_mirrored_cache_holds_the_grids_of_the_mirrored_photos(photos, tmp_path):
    folder, _ = photos
    encoder = build_encoder("tiny_cnn", image_size=32).eval()
    images = {i: folder / f"{i}.png" for i in (1, 2, 3)}
    cache, _ = extract_features(encoder, images, tmp_path / "mirrored", mirror=True)
    plain, _ = extract_features(encoder, images, tmp_path / "plain")
    with torch.no_grad():
        of_mirrored_photo = encoder(encoder.transform(ImageOps.mirror(load_image(images[2]))).unsqueeze(0))[0].numpy()
    assert cache.mirrored and not plain.mirrored
    np.testing.assert_allclose(cache[2].astype(np.float32), of_mirrored_photo, atol=2e-2)
    assert not np.allclose(cache[2], plain[2], atol=2e-2)


def test_a_mirrored_sample_reads_the_mirrored_grid_and_swaps_its_references(photos, tmp_path):
    folder, annotations = photos
    encoder = build_encoder("tiny_cnn", image_size=32)
    images = {i: folder / f"{i}.png" for i in (1, 2, 3)}
    plain, _ = extract_features(encoder, images, tmp_path / "plain")
    mirrored, _ = extract_features(encoder, images, tmp_path / "mirrored", mirror=True)
    dataset = CocoCaptions(annotations, folder, features=plain, mode="eval")
    dataset.mirror = Mirror(1.0, mirrored)
    sample = dataset[0]
    np.testing.assert_array_equal(sample["features"].numpy(), mirrored[1])
    assert sample["references"] == ["a dog on the right of a bright cart 1"]
    dataset.mirror = Mirror(0.0, mirrored)
    assert dataset[0]["references"] == ["a dog on the left of a bright cart 1"]


def test_without_a_cache_the_preprocessed_photo_is_mirrored(photos):
    folder, annotations = photos
    encoder = build_encoder("tiny_cnn", image_size=32)
    dataset = CocoCaptions(annotations, folder, transform=encoder.transform, mode="eval")
    original = dataset[1]["image"]
    dataset.mirror = Mirror(1.0)
    assert torch.equal(dataset[1]["image"], original.flip(-1))


def test_half_the_samples_are_mirrored_at_probability_one_half():
    torch.manual_seed(0)
    mirror = Mirror(0.5)
    assert 400 < sum(mirror.draw() for _ in range(1000)) < 600


def test_wrong_mirror_settings_are_refused_with_one_line(photos, tmp_path):
    folder, _ = photos
    plain, _ = extract_features(build_encoder("tiny_cnn", image_size=32), {1: folder / "1.png"}, tmp_path / "plain")
    with pytest.raises(CaptionerError, match="holds unmirrored grids.*--mirror"):
        Mirror(0.5, FeatureCache(plain.path))
    mirrored, _ = extract_features(build_encoder("tiny_cnn", image_size=32), {1: folder / "1.png"}, tmp_path / "m", mirror=True)
    with pytest.raises(CaptionerError, match="2 of 3 training images are not in the mirrored feature cache"):
        Mirror(0.5, mirrored).check_covers([1, 2, 3])
    with pytest.raises(CaptionerError, match="holds the grids of mirrored photos"):
        mirrored.check_compatible(build_encoder("tiny_cnn", image_size=32).describe())  # never read as the photos' own
    with pytest.raises(CaptionerError, match="holds the grids of unmirrored photos"):
        plain.check_compatible(build_encoder("tiny_cnn", image_size=32).describe(), mirrored=True)
    with pytest.raises(ValueError, match="needs data.mirror_features_dir"):
        CaptionDataConfig(features_dir="cache", mirror=0.5)
    with pytest.raises(ValueError, match=r"data.mirror is a probability in \[0, 1\]"):
        CaptionDataConfig(mirror=1.5)


def test_cross_entropy_and_self_critical_runs_train_on_mirrored_photos(shapes, tmp_path):
    from captioner.training.runner import train
    from helpers import tiny_caption_config

    xe = train(tiny_caption_config(shapes, tmp_path / "xe", "data.mirror=0.5", "trainer.max_epochs=1"))
    assert xe.model_path.is_file() and "val/cider" in xe.metrics
    scst = train(tiny_caption_config(shapes, tmp_path / "scst", "data.mirror=0.5", "training.objective=scst",
                                     f"training.init_from={xe.model_path}", "trainer.max_epochs=1"))
    assert "train/reward" in scst.metrics


def test_the_reward_of_a_mirrored_photo_reads_its_mirrored_references():
    from captioner.training.caption_objectives import CiderReward

    reward = CiderReward({1: ["a dog on the left of a cart", "the dog is on the left side"], 2: ["a red bus", "a bus"]})
    caption = "a dog on the right of a cart <end>"
    plain, mirrored = reward([1, 1], [caption, caption], [False, True])
    assert mirrored > plain
    bus = reward([2, 2], ["a red bus <end>"] * 2, [False, True])
    assert bus[0] == bus[1]  # references that name no side are the same either way
