"""Object boxes from any COCO instances file, checked, and the grid regions the words of a caption name.

Boxes stay in the pixels of the image file as the instances file's images[].width/height give them; the
encoder's `GridGeometry` maps them onto its grid. An image listed in `unlabelled_image_ids` (a field some files
add) is unknown, not "no objects": it gets no region and no supervision, just like an image the file does not
list. A listed image without annotations has no objects.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from captioner.data.coco import read_json
from captioner.errors import CaptionerError
from captioner.grid import Box, GridGeometry
from captioner.text.categories import word_categories


@dataclass(frozen=True)
class ImageBoxes:
    """The labelled boxes of one image: (width, height) of the image file, category name → boxes (clipped)."""

    size: tuple[float, float]
    boxes: Mapping[str, tuple[Box, ...]]
    source: str = ""  # "FILE: image ID (FILE_NAME)", for messages

    def word_boxes(self, words: Sequence[str], image_size: tuple[float, float]) -> list[tuple[Box, ...]]:
        """For each word, the boxes of the category it names in this image, in pixels of `image_size` (the same
        picture at another size); () where it names none."""
        width, height = image_size
        if abs(width / height - self.size[0] / self.size[1]) > 0.02 * self.size[0] / self.size[1]:
            raise CaptionerError(f"{self.source}: the boxes are for a {self.size[0]:g}×{self.size[1]:g} image, "
                                 f"the one given is {width:g}×{height:g}")
        sx, sy = width / self.size[0], height / self.size[1]
        scaled = {c: tuple((x * sx, y * sy, w * sx, h * sy) for x, y, w, h in b) for c, b in self.boxes.items()}
        return [scaled.get(category, ()) for category in word_categories(words, tuple(self.boxes))]


@dataclass
class BoxAnnotations:
    path: Path
    images: dict[int, ImageBoxes]  # labelled images only
    file_names: dict[str, int] = field(default_factory=dict)  # file_name → image id, for figures of loose files
    categories: tuple[str, ...] = ()

    def get(self, image_id: int) -> ImageBoxes | None:
        """The image's boxes; None when the image is unlabelled or not in the file (unknown)."""
        return self.images.get(image_id)

    def for_file(self, file_name: str) -> ImageBoxes | None:
        image_id = self.file_names.get(Path(file_name).name)
        return None if image_id is None else self.get(image_id)


def read_instances(path: str | Path, image_sizes: Mapping[int, tuple[float, float] | None] | None = None) -> BoxAnnotations:
    """Read and check a COCO instances file. `image_sizes` (the evaluated/trained set: id → (width, height) when
    known) makes every image the file names a member of that set, with the same size."""
    path = Path(path)
    data = read_json(path)
    images, categories, annotations, unlabelled = _sections(data, path)
    if image_sizes is not None:
        _check_membership(images, image_sizes, path)
    grouped: dict[int, dict[str, list[Box]]] = {i: {} for i in images if i not in unlabelled}
    for index, a in enumerate(annotations):
        where = f"{path}: annotations[{index}] (image {a.get('image_id') if isinstance(a, dict) else None!r})"
        box, image_id, name = _checked_annotation(a, images, categories, where)
        if image_id in unlabelled:
            raise CaptionerError(f"{where} has boxes but the image is listed in unlabelled_image_ids")
        grouped[image_id].setdefault(name, []).append(_clipped(box, images[image_id]["size"], where))
    labelled = {i: ImageBoxes(images[i]["size"], {n: tuple(b) for n, b in found.items()}, f"{path}: image {i} ({images[i]['file_name']})")
                for i, found in grouped.items()}
    names = {Path(str(img["file_name"])).name: i for i, img in images.items() if img.get("file_name")}
    return BoxAnnotations(path, labelled, names, tuple(categories.values()))


def _sections(data: Any, path: Path) -> tuple[dict, dict, list, set]:
    """images (id → {size, file_name}), categories (id → name), annotations, unlabelled ids; or a one-line error."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise CaptionerError(f"{path}: not a COCO instances file (needs 'images', 'annotations' and 'categories' lists)")
    images = {}
    for index, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not _positive(img.get("width")) or not _positive(img.get("height")):
            raise CaptionerError(f"{path}: images[{index}] needs an integer id and a positive width and height")
        images[img["id"]] = {"size": (float(img["width"]), float(img["height"])), "file_name": img.get("file_name")}
    categories = {}
    for index, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise CaptionerError(f"{path}: categories[{index}] needs an id and a name")
        categories[cat["id"]] = cat["name"]
    unlabelled = data.get("unlabelled_image_ids", [])
    if not isinstance(unlabelled, list) or not all(isinstance(i, int) for i in unlabelled):
        raise CaptionerError(f"{path}: unlabelled_image_ids must be a list of image ids")
    return images, categories, data["annotations"], set(unlabelled)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _checked_annotation(a: Any, images: dict, categories: dict, where: str) -> tuple[list[float], int, str]:
    if not isinstance(a, dict) or not all(k in a for k in ("image_id", "category_id", "bbox")):
        raise CaptionerError(f"{where}: not a COCO instance (needs image_id, category_id and bbox)")
    box = a["bbox"]
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise CaptionerError(f"{where}: bbox must be [x, y, width, height], got {box!r}")
    if box[2] < 0 or box[3] < 0:
        raise CaptionerError(f"{where}: bbox {box} has a negative width or height")
    if a["image_id"] not in images:
        raise CaptionerError(f"{where}: image id {a['image_id']!r} is not in the file's images")
    if a["category_id"] not in categories:
        raise CaptionerError(f"{where}: category id {a['category_id']!r} is not in the file's categories")
    return box, a["image_id"], categories[a["category_id"]]


def _clipped(box: list[float], size: tuple[float, float], where: str) -> Box:
    """The part of the box inside the image; a box with nothing inside is an error."""
    width, height = size
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[0] + box[2], width), min(box[1] + box[3], height)
    if x1 <= x0 or y1 <= y0:
        raise CaptionerError(f"{where}: bbox {box} lies wholly outside the {width:g}×{height:g} image")
    return (x0, y0, x1 - x0, y1 - y0)


def _check_membership(images: dict, sizes: Mapping[int, tuple[float, float] | None], path: Path) -> None:
    for image_id, img in images.items():
        if image_id not in sizes:
            raise CaptionerError(f"{path}: image {image_id} ({img['file_name'] or 'no file name'}) is not in the captions file")
        known = sizes[image_id]
        if known is not None and any(abs(a - b) > 0.5 for a, b in zip(known, img["size"])):
            raise CaptionerError(
                f"{path}: image {image_id} is {img['size'][0]:g}×{img['size'][1]:g} there but "
                f"{known[0]:g}×{known[1]:g} in the captions file: the boxes are for other pixels"
            )


class WordRegions:
    """For a caption's words, the grid region each names: the coverage map of the union of the boxes of that
    word's category in that image. Maps are computed once per (image, category)."""

    def __init__(self, boxes: BoxAnnotations, geometry: GridGeometry) -> None:
        self.boxes, self.geometry = boxes, geometry
        self._maps: dict[tuple[int, str], np.ndarray] = {}

    def region(self, image_id: int, category: str) -> np.ndarray | None:
        """(L,) coverage of the category's boxes in the image; None when it has none or the image is unknown."""
        labelled = self.boxes.get(image_id)
        if labelled is None or category not in labelled.boxes:
            return None
        key = (image_id, category)
        if key not in self._maps:
            self._maps[key] = self.geometry.coverage(labelled.boxes[category], labelled.size).astype(np.float32)
        return self._maps[key]

    def for_words(self, image_id: int, words: Sequence[str]) -> list[tuple[int, str, np.ndarray]]:
        """(position, category, region (L,)) for each word that names a category with boxes in the image."""
        if self.boxes.get(image_id) is None:
            return []
        named = word_categories(words, self.boxes.categories)
        found = [(i, c, self.region(image_id, c)) for i, c in enumerate(named) if c is not None]
        return [(i, c, region) for i, c, region in found if region is not None]

    def targets(self, image_id: int, words: Sequence[str]) -> np.ndarray:
        """(T, L) supervision rows for a caption's words and its <end> (T = len(words) + 1, the steps the
        decoder predicts): a word's region, zeros where it names nothing with boxes."""
        rows = np.zeros((len(words) + 1, self.geometry.grid_size[0] * self.geometry.grid_size[1]), dtype=np.float32)
        for position, _, region in self.for_words(image_id, words):
            rows[position] = region
        return rows

