"""Grounding on real boxes: the COCO instances reader, the regions words name, and the metric on hand-made maps."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from captioner.data.boxes import WordRegions, read_instances
from captioner.errors import CaptionerError
from captioner.evaluation.grounding import format_grounding, word_grounding
from captioner.grid import GridGeometry

LITE0 = GridGeometry((224, 224), 32)  # 7×7 cells of 32 px


def instances(path: Path, images: list[tuple[int, int, int]], boxes: list[tuple[int, list[float]]], **extra) -> Path:
    """Write a person-only COCO instances file: images (id, width, height), boxes (image id, [x, y, w, h])."""
    payload = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h} for i, w, h in images],
        "annotations": [{"id": n + 1, "image_id": i, "category_id": 1, "bbox": b, "iscrowd": 0} for n, (i, b) in enumerate(boxes)],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
        **extra,
    }
    path.write_text(json.dumps(payload))
    return path


def caption(words: str, maps: list[np.ndarray]) -> SimpleNamespace:
    """What the metric reads of a captioner.inference.Caption: its words and one (L,) map per word."""
    return SimpleNamespace(words=words.split(), alphas=np.stack(maps))


def on(*cells: tuple[int, int]) -> np.ndarray:
    alpha = np.zeros((7, 7))
    for row, col in cells:
        alpha[row, col] = 1.0 / len(cells)
    return alpha.reshape(-1)  # (h, w) → (L,)


FLAT = np.full(49, 1 / 49)


@pytest.fixture
def persons(tmp_path) -> Path:
    # image 1: 448×448, one person in the top-left quarter (a 3.5×3.5-cell region); image 2: 224×224, a person
    # on the left half; image 3: labelled, person fills the image; image 4: unknown
    return instances(
        tmp_path / "persons.json",
        [(1, 448, 448), (2, 224, 224), (3, 224, 224), (4, 224, 224)],
        [(1, [0, 0, 224, 224]), (2, [0, 0, 112, 224]), (3, [0, 0, 224, 224])],
        unlabelled_image_ids=[4],
    )


def test_word_mass_inside_outside_and_against_uniform(persons):
    regions = WordRegions(read_instances(persons), LITE0)
    captions = {
        1: caption("a man on a beach", [FLAT, on((0, 0)), FLAT, FLAT, FLAT]),  # "man" looks inside its box
        2: caption("two people", [FLAT, on((3, 6))]),  # "people" looks outside
    }
    result = word_grounding(captions, regions)
    assert result["n"] == 2 and result["labelled_images"] == 2
    assert result["mean_mass"] == pytest.approx(0.5)  # 1 and 0
    assert result["mean_uniform"] == pytest.approx((0.25 + 0.5) / 2)  # the boxes' area shares
    assert result["ratio"] == pytest.approx(0.5 / 0.375) and result["beat_uniform"] == 0.5


def test_half_covered_cells_and_a_resized_image(persons):
    # image 1 is 448 px: its box ends at 224 px = 112 px resized = half-way through column 3 and row 3
    regions = WordRegions(read_instances(persons), LITE0)
    result = word_grounding({1: caption("a man", [FLAT, on((3, 3))])}, regions)
    assert result["mean_mass"] == pytest.approx(0.25)  # a quarter of that cell is inside the box
    assert result["mean_uniform"] == pytest.approx(0.25)


def test_unlabelled_images_and_full_image_boxes_count_nothing(persons):
    regions = WordRegions(read_instances(persons), LITE0)
    captions = {3: caption("a woman", [FLAT, on((0, 0))]), 4: caption("a man", [FLAT, on((0, 0))])}
    result = word_grounding(captions, regions)
    assert result["n"] == 0 and result["skipped_whole_image"] == 1 and result["labelled_images"] == 1
    assert result["mean_mass"] is None and result["ratio"] is None  # n = 0, not NaN
    assert "n = 0" in format_grounding(result)
    json.dumps(result, allow_nan=False)  # scores.json stays valid JSON


def test_per_category_rows_need_more_than_twenty_words(persons):
    regions = WordRegions(read_instances(persons), LITE0)
    few = {2: caption("a man", [FLAT, on((0, 0))])}
    many = {2: caption(" ".join(["man"] * 21), [on((0, 0))] * 21)}
    assert word_grounding(few, regions)["per_category"] == {}
    row = word_grounding(many, regions)["per_category"]["person"]
    assert row["n"] == 21 and row["mean_mass"] == 1.0 and row["beat_uniform"] == 1.0
    assert "person: mass 1.000 vs uniform 0.500 (2.00×), 100% beat uniform, n = 21" in format_grounding(word_grounding(many, regions))


def test_supervision_targets_follow_the_words(persons):
    regions = WordRegions(read_instances(persons), LITE0)
    targets = regions.targets(2, ["a", "man", "and", "a", "dog"])  # 5 words + <end>
    assert targets.shape == (6, 49)
    assert np.flatnonzero(targets.sum(axis=1)).tolist() == [1]  # only "man": dogs are not labelled here
    assert targets[1].reshape(7, 7)[:, :3] == pytest.approx(np.ones((7, 3)))  # the left half: columns 0–2 …
    assert targets[1].reshape(7, 7)[:, 3] == pytest.approx(np.full(7, 0.5))  # … and half of column 3
    assert not regions.targets(4, ["a", "man"]).any()  # unknown image: no supervision


def test_boxes_partly_outside_are_clipped(tmp_path):
    path = instances(tmp_path / "b.json", [(1, 224, 224)], [(1, [-32, 192, 96, 64])])
    labelled = read_instances(path).get(1)
    assert labelled.boxes["person"] == ((0.0, 192.0, 64.0, 32.0),)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"images": [], "annotations": []}, "not a COCO instances file"),
        ([1, 2], "not a COCO instances file"),
        ({"images": [{"id": 1}], "annotations": [], "categories": []}, r"images\[0\] needs an integer id and a positive width"),
        ({"images": [], "annotations": [7], "categories": []}, r"annotations\[0\] \(image None\): not a COCO instance"),
        ({"images": [{"id": 1, "width": 9, "height": 9}], "categories": [{"id": 1, "name": "person"}],
          "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]}, r"annotations\[0\] \(image 1\): bbox must be"),
        ({"images": [{"id": 1, "width": 9, "height": 9}], "categories": [{"id": 1, "name": "person"}],
          "annotations": [{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}, "image id 2 is not in the file's images"),
        ({"images": [{"id": 1, "width": 9, "height": 9}], "categories": [{"id": 1, "name": "person"}],
          "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 1, "category_id": 1, "bbox": [10, 0, 5, 5]}]},
         r"annotations\[1\] \(image 1\): bbox \[10, 0, 5, 5\] lies wholly outside the 9×9 image"),
        ({"images": [{"id": 1, "width": 9, "height": 9}], "categories": [{"id": 1, "name": "person"}], "unlabelled_image_ids": [1],
          "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]}, "listed in unlabelled_image_ids"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_file_and_entry(tmp_path, payload, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(CaptionerError, match=message) as error:
        read_instances(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_images_outside_the_evaluated_set_or_of_another_size_are_refused(persons):
    sizes = {1: (448, 448), 2: (224, 224), 3: None, 4: (224, 224)}
    assert len(read_instances(persons, sizes).images) == 3
    with pytest.raises(CaptionerError, match=r"image 4 \(000000000004.jpg\) is not in the captions file"):
        read_instances(persons, {1: None, 2: None, 3: None})
    with pytest.raises(CaptionerError, match="image 1 is 448×448 there but 640×480 in the captions file"):
        read_instances(persons, {**sizes, 1: (640, 480)})
    with pytest.raises(CaptionerError, match="annotation file not found"):
        read_instances(persons.with_name("missing.json"))
