"""Caption data: a COCO-format captions JSON or a Karpathy-format split file, plus an image folder, with
reproducible subsets. No Lightning here."""

import contextlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from captioner.data.images import input_size, load_image
from captioner.data.karpathy import CaptionIndex, check_split, is_karpathy, karpathy_index
from captioner.data.mirror import mirror_caption, mirror_regions
from captioner.errors import CaptionerError
from captioner.registry import Registry
from captioner.text import Vocabulary, tokenize


@dataclass
class SubsetSpec:
    """Which images of a split to use: a count, a fraction (seeded random draw), or a Karpathy split file."""

    max_images: int | None = None
    fraction: float | None = None
    seed: int = 0
    karpathy_file: str | None = None
    karpathy_split: str | None = None  # train (includes restval) | val | test

    def select(self, image_ids: list[int]) -> list[int]:
        ids = sorted(image_ids)
        if self.karpathy_file:
            wanted = karpathy_ids(self.karpathy_file, self.karpathy_split or "train")
            ids = [i for i in ids if i in wanted]
        if self.fraction is not None:
            if not 0 < self.fraction <= 1:
                raise CaptionerError(f"subset fraction must be in (0, 1], got {self.fraction}")
            ids = sorted(random.Random(self.seed).sample(ids, max(1, round(len(ids) * self.fraction))))
        if self.max_images is not None:
            if self.max_images < 1:
                raise CaptionerError(f"max_images must be positive, got {self.max_images}")
            ids = sorted(random.Random(self.seed).sample(ids, min(self.max_images, len(ids))))
        return ids


def karpathy_ids(path: str | Path, split: str) -> set[int]:
    """COCO ids of one split of a Karpathy `dataset_coco.json` ("train" includes "restval")."""
    data = read_json(path)
    splits = {"train": {"train", "restval"}}.get(split, {split})
    try:
        return {int(img["cocoid"]) for img in data["images"] if img["split"] in splits}
    except (KeyError, TypeError):
        raise CaptionerError(f"{path}: not a Karpathy split file (expected images with cocoid and split)") from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise CaptionerError(f"annotation file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CaptionerError(f"{path}: invalid JSON ({e})") from None


def load_coco_captions(path: str | Path):
    """A `pycocotools.coco.COCO` over a captions file, after checking the fields captioning needs."""
    from pycocotools.coco import COCO

    data = read_json(path)
    _check_captions_json(data, path)
    for number, annotation in enumerate(data["annotations"], start=1):
        annotation.setdefault("id", number)  # hand-made files often omit ids; pycocotools needs them
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _check_captions_json(data: Any, path: str | Path) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise CaptionerError(f"{path}: not a COCO captions file (needs 'images' and 'annotations' lists) "
                             "nor a Karpathy split file (images with 'sentences')")
    for field, items, keys in (("images", data["images"], ("id", "file_name")), ("annotations", data["annotations"], ("image_id", "caption"))):
        for i, item in enumerate(items):
            if not isinstance(item, dict) or any(k not in item for k in keys):
                raise CaptionerError(f"{path}: {field}[{i}] lacks {' or '.join(keys)}")
    known = {img["id"] for img in data["images"]}
    orphans = [a["image_id"] for a in data["annotations"] if a["image_id"] not in known]
    if orphans:
        raise CaptionerError(f"{path}: {len(orphans)} captions refer to image ids not in 'images' (e.g. {orphans[0]})")


# caption file format → (parsed JSON, path) → CaptionIndex; "auto" picks one by looking at the file
CAPTION_FORMATS: Registry[Callable[[Any, str | Path], CaptionIndex]] = Registry("caption file format")
CAPTION_FORMATS.register("karpathy")(karpathy_index)


@CAPTION_FORMATS.register("coco")
def coco_index(data: Any, path: str | Path) -> CaptionIndex:
    """A COCO captions file (images + annotations) as image id → file name and captions, after checking it."""
    _check_captions_json(data, path)
    captions: dict[int, list[str]] = {}
    for annotation in data["annotations"]:
        captions.setdefault(annotation["image_id"], []).append(str(annotation["caption"]).strip())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    return CaptionIndex(files, captions, sizes={image["id"]: _size(image) for image in data["images"]})


def read_captions(path: str | Path, format: str = "auto") -> CaptionIndex:
    """Read a caption file in the given format (coco | karpathy), or the one its content shows (auto)."""
    data = read_json(path)
    if format == "auto":
        format = "karpathy" if is_karpathy(data) else "coco"
    return CAPTION_FORMATS.get(format)(data, path)


def _size(image: dict) -> tuple[float, float] | None:
    width, height = image.get("width"), image.get("height")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in (width, height))
    return (float(width), float(height)) if numbers else None


class CocoCaptions(Dataset):
    """Captions of a COCO-format or Karpathy-format file (`format`, detected by default); `split` picks a Karpathy
    split (train includes restval; COCO files have none). mode="train": one sample per caption; mode="eval": one
    per image.

    Samples carry `"image"` (transform applied) or, given a feature cache, `"features"` (L, C) without any
    image decoding. Given `regions` (captioner.data.boxes.WordRegions), eval-mode samples (an image with all its
    references) also carry `"grounding"`: for each reference a (T_i, L) tensor, for each of its words (and <end>)
    the grid region of the boxes it names, zeros where it names none. Given `mirror` (captioner.data.mirror.Mirror),
    each sample is, with its probability, the mirrored photo with "left" and "right" swapped in its captions and
    its grounding regions mirrored.
    """

    def __init__(
        self,
        annotations: str | Path,
        images_dir: str | Path,
        transform: Callable | None = None,
        vocab: Vocabulary | None = None,
        mode: str = "train",
        subset: SubsetSpec | None = None,
        features: Any = None,
        max_caption_len: int | None = None,
        skip_missing: bool = False,
        fail_fast: bool = True,
        format: str = "auto",
        split: str | None = None,
        regions: Any = None,
    ) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be train or eval, got {mode!r}")
        if (transform is None) == (features is None):
            raise ValueError("give exactly one of transform (read images) or features (a feature cache)")
        if mode == "train" and vocab is None:
            raise ValueError("training samples need a vocabulary to encode captions")
        self.annotations, self.images_dir = Path(annotations), Path(images_dir)
        self.transform, self.vocab, self.mode, self.features = transform, vocab, mode, features
        self.max_caption_len, self.fail_fast = max_caption_len, fail_fast
        index = read_captions(annotations, format)
        check_split(index, split, annotations)
        self._files, self._captions, self._sizes = index.files, index.captions, index.sizes
        ids = (subset or SubsetSpec()).select(index.ids_in(split))
        self.regions = regions  # captioner.data.boxes.WordRegions: per-image samples carry per-word grounding targets
        self.mirror = None  # captioner.data.mirror.Mirror: training samples mirrored left ↔ right at random
        self.image_ids = self._available(ids, skip_missing)
        self._items = [(i, c) for i in self.image_ids for c in self._captions[i]] if mode == "train" else self.image_ids

    def _available(self, ids: list[int], skip_missing: bool) -> list[int]:
        if self.features is not None:
            missing = [i for i in ids if i not in self.features]
            what = f"feature cache {getattr(self.features, 'path', '')}"
        else:
            missing = [i for i in ids if not (self.images_dir / self._files[i]).is_file()]
            what = f"image folder {self.images_dir}"
        if missing and not skip_missing:
            example = self._files[missing[0]]
            raise CaptionerError(f"{self.annotations}: {len(missing)} of {len(ids)} images are not in the {what} (e.g. {example})")
        return [i for i in ids if i not in set(missing)]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> dict:
        mirrored = self.mirror is not None and self.mirror.draw()
        if self.mode == "train":
            image_id, caption = self._items[index]
            ids = self.vocab.encode(mirror_caption(caption) if mirrored else caption)
            if self.max_caption_len and len(ids) > self.max_caption_len + 2:
                ids = ids[: self.max_caption_len + 1] + [self.vocab.end_id]  # keep <end>
            visual = self._visual(image_id, mirrored)
            return visual if "skipped" in visual else {**visual, "caption": torch.tensor(ids), "image_id": image_id, **self._side(mirrored)}
        image_id = self._items[index]
        visual = self._visual(image_id, mirrored)
        if "skipped" in visual:
            return visual
        references = self._captions[image_id]
        sample = {**visual, "image_id": image_id, "references": [mirror_caption(r) for r in references] if mirrored else references,
                  **self._side(mirrored)}
        if self.regions is not None:  # one (T_i, L) per reference, T_i = its words + <end>
            sample["grounding"] = [torch.from_numpy(self._regions(image_id, r, mirrored)) for r in references]
        return sample

    def _side(self, mirrored: bool) -> dict:
        """With mirroring on, samples say whether they are mirrored (SCST rewards them against mirrored references)."""
        return {} if self.mirror is None else {"mirrored": mirrored}

    def _regions(self, image_id: int, reference: str, mirrored: bool) -> np.ndarray:
        """(T, L) grounding targets of one reference's words (+ <end>), mirrored with the photo."""
        targets = self.regions.targets(image_id, tokenize(reference))
        return mirror_regions(targets, self.regions.geometry.grid_size) if mirrored else targets

    def _visual(self, image_id: int, mirrored: bool = False) -> dict:
        """The image (or its cached grid), or the mirrored photo's; with fail_fast=False an unreadable image yields
        {"skipped": reason}."""
        if self.features is not None:
            cache = self.mirror.features if mirrored else self.features
            return {"features": torch.from_numpy(cache[image_id])}
        try:
            image = self.transform(load_image(self.image_path(image_id), input_size(self.transform)))  # (3, S, S)
        except CaptionerError as e:
            if self.fail_fast:
                raise
            return {"skipped": str(e)}
        return {"image": image.flip(-1) if mirrored else image}  # mirrored: columns reversed

    def image_sizes(self) -> dict[int, tuple[float, float] | None]:
        """id → (width, height) of every image of the annotations file (not only the subset); None where not given."""
        return dict(self._sizes)

    def image_path(self, image_id: int) -> Path:
        return self.images_dir / self._files[image_id]

    def captions_for(self, image_id: int) -> list[str]:
        return self._captions[image_id]

    def references(self) -> dict[int, list[str]]:
        return {i: self._captions[i] for i in self.image_ids}

    def all_captions(self) -> list[str]:
        return [c for i in self.image_ids for c in self._captions[i]]
