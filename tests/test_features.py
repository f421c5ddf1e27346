import json

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.cli import main
from captioner.data.coco import CocoCaptions
from captioner.data.features import FeatureCache, extract_features
from captioner.encoders import build_encoder
from captioner.errors import CaptionerError


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    paths = {}
    for i in range(1, 6):
        Image.new("RGB", (50, 40), (40 * i, 30, 200 - 30 * i)).save(folder / f"{i}.png")
        paths[i] = folder / f"{i}.png"
    return paths


def test_cache_round_trip_matches_the_encoder_in_float16(images, tmp_path):
    torch.manual_seed(0)
    encoder = build_encoder("tiny_cnn", image_size=32).eval()
    cache, stats = extract_features(encoder, images, tmp_path / "cache", batch_size=2)
    assert stats["images"] == 5 and stats["failed"] == []
    from captioner.data.images import load_image

    with torch.no_grad():
        expected = encoder(encoder.transform(load_image(images[3])).unsqueeze(0))[0].numpy()
    assert cache[3].dtype == np.float16 and cache[3].shape == expected.shape
    np.testing.assert_allclose(cache[3].astype(np.float32), expected, rtol=1e-3, atol=1e-3)


def test_every_row_reads_back_after_pickling_and_a_truncated_file_is_named(images, tmp_path):
    import pickle

    cache, _ = extract_features(build_encoder("tiny_cnn", image_size=32), images, tmp_path / "cache")
    expected = np.load(cache.path / "features.npy")  # (N, L, C)
    copy = pickle.loads(pickle.dumps(cache))  # as a DataLoader worker gets it
    for row, image_id in enumerate(sorted(images)):
        np.testing.assert_array_equal(copy[image_id], expected[row])
    data = cache.path / "features.npy"
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(CaptionerError, match="features.npy is truncated"):
        FeatureCache(cache.path)[5]


def test_stale_cache_is_refused_naming_the_difference(images, tmp_path):
    cache, _ = extract_features(build_encoder("tiny_cnn", image_size=32), images, tmp_path / "cache")
    with pytest.raises(CaptionerError, match="image_size 32 vs 64.*re-run captioner extract-features"):
        cache.check_compatible(build_encoder("tiny_cnn", image_size=64).describe())


def test_existing_cache_is_not_overwritten_and_unreadable_images_are_skipped(images, tmp_path):
    encoder = build_encoder("tiny_cnn", image_size=32)
    extract_features(encoder, images, tmp_path / "cache")
    with pytest.raises(CaptionerError, match="already exists"):
        extract_features(encoder, images, tmp_path / "cache")
    images[2].write_text("not an image")
    cache, stats = extract_features(encoder, images, tmp_path / "cache", overwrite=True)
    assert 2 not in cache and len(cache) == 4 and "2.png" in stats["failed"][0]


def test_dataset_reads_features_without_decoding_images(images, tmp_path):
    encoder = build_encoder("tiny_cnn", image_size=32)
    cache, _ = extract_features(encoder, images, tmp_path / "cache")
    annotations = tmp_path / "captions.json"
    annotations.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.png"} for i in images],
        "annotations": [{"image_id": i, "caption": "a thing"} for i in images],
    }))
    for path in images.values():
        path.unlink()  # nothing is decoded: the images may even be gone
    dataset = CocoCaptions(annotations, tmp_path / "images", features=FeatureCache(cache.path), mode="eval")
    assert dataset[0]["features"].shape == (encoder.num_locations, encoder.channels)


def test_extract_features_cli(images, tmp_path, capsys):
    annotations = tmp_path / "captions.json"
    annotations.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.png"} for i in images], "annotations": []}))
    args = ["extract-features", "--annotations", str(annotations), "--images", str(tmp_path / "images"),
            "--out", str(tmp_path / "cache"), "--encoder", "tiny_cnn", "--image-size", "32", "--workers", "0"]
    assert main(args) == 0
    assert "cached 5 grids" in capsys.readouterr().out
    assert FeatureCache(tmp_path / "cache").meta["encoder"]["name"] == "tiny_cnn"


@pytest.mark.parametrize("folder, message", [("nowhere", "--images {tmp}/nowhere: no such folder"),
                                             ("other", "none of the 5 images the caption file(s) name is in {tmp}/other (e.g. 1.png); is --images the right folder?")])
def test_extract_features_from_a_wrong_image_folder_is_one_line_and_writes_no_cache(images, tmp_path, capsys, folder, message):
    (tmp_path / "other").mkdir()  # a folder, but not the one holding the photos
    annotations = tmp_path / "captions.json"
    annotations.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.png"} for i in images], "annotations": []}))
    assert main(["extract-features", "--annotations", str(annotations), "--images", str(tmp_path / folder),
                 "--out", str(tmp_path / "cache"), "--encoder", "tiny_cnn", "--workers", "0"]) == 1
    assert capsys.readouterr().err.strip() == f"captioner extract-features: error: {message.format(tmp=tmp_path)}"
    assert not (tmp_path / "cache").exists()


def test_an_interrupted_extraction_leaves_no_partial_cache_behind(images, tmp_path):
    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    encoder = build_encoder("tiny_cnn", image_size=32).eval()
    with pytest.raises(KeyboardInterrupt):
        extract_features(encoder, images, tmp_path / "cache", batch_size=2, on_progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # neither the cache nor its temporary folder
