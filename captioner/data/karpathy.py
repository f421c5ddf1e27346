"""Karpathy-format caption files: `dataset_flickr8k.json`, `dataset_flickr30k.json`, `dataset_coco.json`.

One JSON holds every split: `{"images": [{"filename", "imgid", "split", "sentences": [{"raw", "tokens"}], ...}]}`
with split train / val / test (COCO's adds restval, which the standard recipe trains on). An image's id is
its `imgid` (its position in the list when there is none), so feature caches, results files and references
agree whichever command reads the file. Files are `images_dir/filename`, or `images_dir/filepath/filename`
when the entry has a `filepath` (COCO's train2014/val2014). No Lightning here.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captioner.errors import CaptionerError

SPLITS = ("train", "restval", "val", "test")
SPLIT_MEMBERS = {"train": {"train", "restval"}}  # asking for train also gives restval, as everyone trains on both


@dataclass
class CaptionIndex:
    """What a caption file says, whatever its format: image id → file (relative to the image folder), captions
    and, for Karpathy files, split."""

    files: dict[int, str]
    captions: dict[int, list[str]]
    splits: dict[int, str] | None = None  # None: the file has no splits (COCO format: the file is the split)
    sizes: dict[int, tuple[float, float] | None] = field(default_factory=dict)  # (width, height) where the file says

    def ids_in(self, split: str | None) -> list[int]:
        """Ids with captions, of one split ("train" includes "restval"; None or a file without splits: all)."""
        ids = [i for i in self.files if self.captions.get(i)]
        if split is None or self.splits is None:
            return ids
        members = SPLIT_MEMBERS.get(split, {split})
        return [i for i in ids if self.splits[i] in members]


def is_karpathy(data: Any) -> bool:
    """Whether parsed JSON looks like a Karpathy file (a list of images carrying their sentences)."""
    images = data.get("images") if isinstance(data, dict) else None
    return bool(images) and "annotations" not in data and isinstance(images[0], dict) and "sentences" in images[0]


def karpathy_index(data: Any, path: str | Path) -> CaptionIndex:
    """Check a parsed Karpathy file and index it; a missing field is a one-line error naming the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data["images"]:
        raise CaptionerError(f"{path}: not a Karpathy split file (needs a non-empty 'images' list)")
    files, captions, splits = {}, {}, {}
    for position, image in enumerate(data["images"]):
        image_id = _check_image(image, position, path)
        if image_id in files:
            raise CaptionerError(f"{path}: images[{position}] repeats imgid {image_id}")
        files[image_id] = str(Path(image.get("filepath", "")) / image["filename"])
        captions[image_id] = [_sentence_text(s, position, path) for s in image["sentences"]]
        splits[image_id] = image["split"]
    return CaptionIndex(files, captions, splits)


def _check_image(image: Any, position: int, path: str | Path) -> int:
    if not isinstance(image, dict):
        raise CaptionerError(f"{path}: images[{position}] is not an object")
    for key, kind in (("filename", str), ("split", str), ("sentences", list)):
        if not isinstance(image.get(key), kind):
            problem = "lacks" if key not in image else "has a malformed"
            raise CaptionerError(f"{path}: images[{position}] {problem} '{key}' (a Karpathy file gives every image "
                                 "a filename, a split and its sentences)")
    if image["split"] not in SPLITS:
        raise CaptionerError(f"{path}: images[{position}] has split {image['split']!r}; known: {', '.join(SPLITS)}")
    image_id = image.get("imgid", position)
    if not isinstance(image_id, int):
        raise CaptionerError(f"{path}: images[{position}] has a non-integer imgid {image_id!r}")
    return image_id


def _sentence_text(sentence: Any, position: int, path: str | Path) -> str:
    """A sentence's raw text, or its tokens joined when there is no raw text."""
    if isinstance(sentence, dict) and isinstance(sentence.get("raw"), str):
        return sentence["raw"].strip()
    if isinstance(sentence, dict) and isinstance(sentence.get("tokens"), list):
        return " ".join(map(str, sentence["tokens"]))
    raise CaptionerError(f"{path}: images[{position}] has a sentence without 'raw' text or 'tokens'")


def check_split(index: CaptionIndex, split: str | None, path: str | Path) -> None:
    """A split that no image of a Karpathy file has is a one-line error listing the ones it has."""
    if split is None or index.splits is None or index.ids_in(split):
        return
    present = sorted(set(index.splits.values()))
    raise CaptionerError(f"{path}: no images with captions in split {split!r} (the file has: {', '.join(present)})")
