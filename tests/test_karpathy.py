"""Flickr8k/Flickr30k-style Karpathy split files: read, trained on, cached and evaluated like COCO files."""

import json
from pathlib import Path

import pytest
from torchvision import transforms as T

from captioner.cli import main
from captioner.config import load_config
from captioner.data.coco import CocoCaptions
from captioner.data.features import FeatureCache
from captioner.errors import CaptionerError
from captioner.training.runner import train
from helpers import CONFIGS, tiny_caption_config

TRANSFORM = T.Compose([T.Resize((32, 32)), T.ToTensor()])
SPLITS = ["train"] * 28 + ["restval"] * 4 + ["val"] * 4 + ["test"] * 4  # the 40 shapes images in order


def shapes_as_karpathy(shapes: Path, out: Path) -> Path:
    """The shapes set rewritten as a Karpathy file (dataset_flickr8k.json's layout): imgid = position."""
    coco = [json.loads((shapes / f"captions_{split}.json").read_text()) for split in ("train", "val")]
    captions = {}
    for data in coco:
        for annotation in data["annotations"]:
            captions.setdefault(annotation["image_id"], []).append(annotation["caption"])
    images = [image for data in coco for image in data["images"]]
    entries = [{"filename": image["file_name"], "imgid": position, "split": split,
                "sentences": [{"raw": c, "tokens": c.lower().split(), "imgid": position} for c in captions[image["id"]]]}
               for position, (image, split) in enumerate(zip(images, SPLITS))]
    out.write_text(json.dumps({"images": entries, "dataset": "flickr8k"}))
    return out


@pytest.fixture(scope="module")
def karpathy(shapes, tmp_path_factory) -> Path:
    return shapes_as_karpathy(shapes, tmp_path_factory.mktemp("karpathy") / "dataset_shapes.json")


def test_a_split_gives_its_images_by_imgid_with_their_raw_sentences(karpathy, shapes):
    train = CocoCaptions(karpathy, shapes / "images", TRANSFORM, mode="eval", split="train")
    assert train.image_ids == list(range(32))  # train includes restval, as the standard recipe trains on both
    test = CocoCaptions(karpathy, shapes / "images", TRANSFORM, mode="eval", split="test")
    assert test.image_ids == [36, 37, 38, 39]
    entry = json.loads(karpathy.read_text())["images"][36]
    assert test[0]["references"] == [s["raw"] for s in entry["sentences"]]
    assert len(CocoCaptions(karpathy, shapes / "images", TRANSFORM, mode="eval")) == 40  # no split: every image
    with pytest.raises(CaptionerError, match="not a COCO captions file"):
        CocoCaptions(karpathy, shapes / "images", TRANSFORM, mode="eval", format="coco")


@pytest.mark.parametrize("change, message", [
    (lambda image: image.pop("split"), r"images\[0\] lacks 'split'"),
    (lambda image: image.pop("sentences"), r"images\[0\] lacks 'sentences'"),
    (lambda image: image.update(sentences="a dog"), r"images\[0\] has a malformed 'sentences'"),
    (lambda image: image.update(sentences=[{"imgid": 0}]), r"images\[0\] has a sentence without 'raw' text or 'tokens'"),
    (lambda image: image.update(split="holdout"), r"images\[0\] has split 'holdout'; known: train, restval, val, test"),
    (lambda image: image.update(imgid=1), r"images\[1\] repeats imgid 1"),
])
def test_a_broken_karpathy_file_is_one_line_naming_the_entry(karpathy, tmp_path, change, message):
    data = json.loads(karpathy.read_text())
    change(data["images"][0])
    bad = tmp_path / "dataset_bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CaptionerError, match=f"dataset_bad.json: {message}") as error:
        CocoCaptions(bad, tmp_path, TRANSFORM, mode="eval", format="karpathy")
    assert "\n" not in str(error.value)


def test_a_split_the_file_lacks_is_named_with_the_ones_it_has(karpathy, shapes):
    with pytest.raises(CaptionerError, match=r"no images with captions in split 'dev' \(the file has: restval, test, train, val\)"):
        CocoCaptions(karpathy, shapes / "images", TRANSFORM, mode="eval", split="dev")


def test_cache_train_and_evaluate_from_one_karpathy_file(karpathy, shapes, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["extract-features", "--annotations", str(karpathy), "--images", str(shapes / "images"), "--out", str(cache),
                 "--encoder", "tiny_cnn", "--image-size", "64", "--workers", "0", "--quiet"]) == 0
    assert sorted(FeatureCache(cache).ids) == list(range(40))  # keyed by imgid, like every other reader of the file
    config = tiny_caption_config(shapes, tmp_path / "run", f"data.train_annotations={karpathy}",
                                 f"data.val_annotations={karpathy}", f"data.features_dir={cache}")
    assert config.data.format == "auto"  # told by content
    run = train(config)
    assert "val/bleu4" in run.metrics
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run.model_path), "--annotations", str(karpathy), "--images",
                 str(shapes / "images"), "--features", str(cache), "--beam", "2", "--out", str(out), "--quiet"]) == 0
    assert "4 images" in capsys.readouterr().out  # the test split by default
    assert sorted(r["image_id"] for r in json.loads((out / "results.json").read_text())) == [36, 37, 38, 39]


@pytest.mark.parametrize("name, images", [("caption_flickr8k.yaml", "data/flickr8k/Flicker8k_Dataset"),
                                          ("caption_flickr30k.yaml", "data/flickr30k/flickr30k-images")])
def test_flickr_configs_use_the_karpathy_file_and_its_standard_splits(name, images):
    data = load_config(CONFIGS / name).data
    assert (data.format, data.train_split, data.val_split, data.images_dir) == ("karpathy", "train", "val", images)
    assert data.train_annotations == data.val_annotations and data.train_annotations.endswith(".json")
