import json

import numpy as np
from PIL import Image
from pycocotools.coco import COCO

from captioner.cli import main
from captioner.data.shapes import COLORS, ShapeObject, grounded_word_boxes, make_shapes, object_boxes


def test_same_seed_same_dataset(tmp_path):
    a, b = make_shapes(tmp_path / "a", 12, seed=3), make_shapes(tmp_path / "b", 12, seed=3)
    for name in ("captions_train.json", "vqa_val_annotations.json", "instances_train.json"):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes()
    assert (a.images / "shapes_000004.png").read_bytes() == (b.images / "shapes_000004.png").read_bytes()


def test_every_file_loads_in_pycocotools_and_captions_name_the_objects(shapes):
    for split in ("train", "val"):
        captions = COCO(str(shapes / f"captions_{split}.json"))
        instances = COCO(str(shapes / f"instances_{split}.json"))
        for image_id in captions.getImgIds():
            texts = [a["caption"] for a in captions.imgToAnns[image_id]]
            assert len(texts) >= 3
            for obj in instances.imgToAnns[image_id]:
                assert f"{obj['color']} {instances.cats[obj['category_id']]['name']}" in texts[0]


def test_questions_pair_with_annotations_with_ten_answers(shapes):
    questions = json.loads((shapes / "vqa_train_questions.json").read_text())["questions"]
    annotations = {a["question_id"]: a for a in json.loads((shapes / "vqa_train_annotations.json").read_text())["annotations"]}
    assert {q["question_id"] for q in questions} == set(annotations)
    for q in questions:
        assert len(annotations[q["question_id"]]["answers"]) == 10
    assert {a["answer_type"] for a in annotations.values()} == {"yes/no", "number", "other"}


def test_boxes_hold_their_objects_colour(shapes):
    boxes = object_boxes(shapes / "instances_train.json")
    captions = json.loads((shapes / "captions_train.json").read_text())
    files = {img["id"]: img["file_name"] for img in captions["images"]}
    for image_id, objects in list(boxes.items())[:10]:
        pixels = np.asarray(Image.open(shapes / "images" / files[image_id]))
        for o in objects:
            x, y, w, h = o.bbox
            assert 0 <= x and 0 <= y and x + w <= pixels.shape[1] and y + h <= pixels.shape[0]
            centre = pixels[int(y + 0.6 * h), int(x + w / 2)]  # inside circles, squares and triangles alike
            assert np.abs(centre.astype(int) - COLORS[o.color]).max() < 10


def test_grounded_words_name_exactly_one_object():
    objects = [ShapeObject("red", "circle", (0, 0, 10, 10)), ShapeObject("blue", "circle", (20, 0, 10, 10))]
    words = "a red circle and a blue circle".split()
    assert grounded_word_boxes(words, objects) == [(1, (0, 0, 10, 10)), (5, (20, 0, 10, 10))]  # "circle" is ambiguous


def test_cli_writes_data_and_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["make-shapes", str(out), "--images", "20"]) == 0
    assert len(list((out / "images").iterdir())) == 20
    assert main(["make-shapes", str(out), "--images", "20"]) == 1
    assert "is not empty; pass --force" in capsys.readouterr().err
