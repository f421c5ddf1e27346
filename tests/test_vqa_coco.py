"""COCO-QA-style questions from captions and person boxes, on a hand-made captions file whose answers are known."""

import json
from collections import Counter
from pathlib import Path

import pytest

from captioner.cli import main
from captioner.data.caption_facts import CaptionReader
from captioner.data.vqa import read_vqa
from captioner.data.vqa_coco import make_vqa_coco
from captioner.data.vqa_coco_lexicon import COLORS, OBJECTS, ROOMS, SPORTS
from captioner.errors import CaptionerError
from captioner.evaluation.vqa_accuracy import normalize_answer

CAPTIONS = {
    1: ["A man holding a red umbrella on a street.", "A man with a red umbrella walks in the rain.",
        "A person holding an umbrella near a red bus.", "A guy is holding a black umbrella.", "Man walking with umbrella."],
    2: ["A woman playing tennis on a clay court.", "A tennis player swings her racket at the ball.",
        "A woman holding a tennis racket on a court.", "A lady is holding a racquet.", "A female tennis player in a white dress."],
    3: ["A dog sitting on a couch in a living room.", "A brown dog lying on a sofa.", "A brown dog relaxing in the living room.",
        "A cat and a dog on a couch.", "A puppy on a couch."],
    4: ["A plate of food.", "Something on a table.", "A blurry photo.", "Food and drinks.", "A close up of a meal."],
}
# box heights (all 40 px wide, on 640×480 photos): photo 1 has a prominent person and one far away (under 0.5 % of
# the photo), 2 seven players; 3 is unlabelled (unknown); 4 is labelled with nobody
BOXES = {1: [200.0, 30.0], 2: [150.0] * 7, 4: []}


def write_coco_mini(folder: Path, captions: dict = CAPTIONS, boxes: dict = BOXES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in captions]
    annotations = [{"id": n, "image_id": i, "caption": c} for n, (i, c) in enumerate(((i, c) for i, cs in captions.items() for c in cs), 1)]
    (folder / "captions_train.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    persons = [{"id": n, "image_id": i, "category_id": 1, "bbox": [10.0, 10.0, 40.0, h]} for n, (i, h) in
               enumerate(((i, h) for i, hs in boxes.items() for h in hs), 1)]
    (folder / "persons_train.json").write_text(json.dumps({
        "images": images, "annotations": persons, "categories": [{"id": 1, "name": "person"}],
        "unlabelled_image_ids": [i for i in captions if i not in boxes]}))
    return folder


def questions(folder: Path, split: str = "train") -> dict[tuple[int, str], dict]:
    """(image_id, question) → its annotation, from the VQA files written into `folder`."""
    items = read_vqa(folder / f"vqa_{split}_questions.json", folder / f"vqa_{split}_annotations.json")
    return {(item.image_id, item.question): item.annotation for item in items}


def answers(annotation: dict) -> Counter:
    return Counter(a["answer"] for a in annotation["answers"])


@pytest.fixture
def generated(tmp_path) -> dict[tuple[int, str], dict]:
    make_vqa_coco(write_coco_mini(tmp_path / "coco"), tmp_path / "out", splits=("train",))
    return questions(tmp_path / "out")


def test_people_are_counted_from_the_boxes_of_labelled_photos_only(generated):
    asked = {image_id: answers(a) for (image_id, q), a in generated.items() if q == "how many people are in the picture?"}
    # every box vs the prominent people (0.5 % of the photo or more): five annotators each
    assert asked == {1: Counter({"2": 5, "1": 5}), 2: Counter({"5 or more": 10}), 4: Counter({"0": 10})}  # 3 is unlabelled
    assert generated[(1, "how many people are in the picture?")]["multiple_choice_answer"] == "2"  # the literal reading
    assert generated[(1, "how many people are in the picture?")]["answer_type"] == "number"


def test_what_the_captions_agree_on_becomes_a_question(generated):
    expected = {
        (1, "what is the man holding?"): ("what is holding", {"umbrella": 10}),
        # 'red' in two captions, 'black' in one: each caption is two annotators, silent ones agree with the majority
        (1, "what color is the umbrella?"): ("what color", {"red": 8, "black": 2}),
        (2, "what is the woman holding?"): ("what is holding", {"racket": 10}),  # racket, racquet, tennis racket
        (2, "what sport is this?"): ("what sport", {"tennis": 10}),
        (3, "what animal is this?"): ("what animal", {"dog": 10}),  # the cat is named once: not a second animal
        (3, "what color is the dog?"): ("what color", {"brown": 10}),
        (3, "what room is this?"): ("what room", {"living room": 10}),
    }
    for key, (question_type, given) in expected.items():
        assert generated[key]["question_type"] == question_type and answers(generated[key]) == given, key
    caption_questions = {k for k, a in generated.items() if a["question_type"] not in ("how many people", "is there")}
    assert caption_questions == set(expected)  # nothing on photo 4, no colour for the bus or the dress (one caption each)


def test_yes_no_questions_come_with_a_matched_negative_on_a_photo_that_never_names_the_object(generated):
    yes_no = {k: a for k, a in generated.items() if a["question_type"] == "is there"}
    positives = {q for (i, q), a in yes_no.items() if answers(a) == {"yes": 10}}
    assert {(i, q) for (i, q), a in yes_no.items() if answers(a) == {"yes": 10}} == {
        (1, "is there an umbrella in the picture?"), (2, "is there a racket in the picture?"),
        (3, "is there a dog in the picture?"), (3, "is there a couch in the picture?")}
    negatives = [(i, q) for (i, q), a in yes_no.items() if answers(a) == {"no": 10}]
    assert sorted(q for _, q in negatives) == sorted(positives)  # each object asked once with each answer
    reader = CaptionReader()
    for image_id, question in negatives:
        obj = question.removeprefix("is there a ").removeprefix("n ").removesuffix(" in the picture?")
        assert all(obj not in reader.read(c).objects for c in CAPTIONS[image_id]), (image_id, question)


def test_generation_is_deterministic_and_refuses_to_overwrite(tmp_path, capsys):
    data = write_coco_mini(tmp_path / "coco")
    assert main(["make-vqa-coco", str(tmp_path / "a"), "--data", str(data), "--splits", "train"]) == 0
    assert "train: " in capsys.readouterr().out
    make_vqa_coco(data, tmp_path / "b", splits=("train",))
    for name in ("vqa_train_questions.json", "vqa_train_annotations.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert main(["make-vqa-coco", str(tmp_path / "a"), "--data", str(data), "--splits", "train"]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err


def test_refuses_captions_without_captions_and_boxes_of_other_photos(tmp_path):
    data = write_coco_mini(tmp_path / "coco")
    captions = json.loads((data / "captions_train.json").read_text())
    (data / "captions_train.json").write_text(json.dumps({**captions, "annotations": []}))
    with pytest.raises(CaptionerError, match=r"captions_train.json: no captions"):
        make_vqa_coco(data, tmp_path / "out", splits=("train",))
    data = write_coco_mini(tmp_path / "other", boxes={**BOXES, 99: [100.0]})
    persons = json.loads((data / "persons_train.json").read_text())
    persons["images"].append({"id": 99, "file_name": "x.jpg", "width": 10, "height": 10})
    (data / "persons_train.json").write_text(json.dumps(persons))
    with pytest.raises(CaptionerError, match=r"persons_train.json: 1 of its 5 image ids are not in .*captions_train.json \(e.g. 99\)"):
        make_vqa_coco(data, tmp_path / "out", splits=("train",))
    persons["images"].pop()
    (data / "persons_train.json").write_text(json.dumps(persons))
    with pytest.raises(CaptionerError, match=r"persons_train.json: a box is on image 99"):
        make_vqa_coco(data, tmp_path / "out", splits=("train",))
    assert not (tmp_path / "out").exists()  # nothing written when a split is refused


def test_every_answer_the_rules_can_give_survives_the_official_normalisation():
    for answer in [*COLORS, *OBJECTS, *SPORTS, *ROOMS, "5 or more", "0", "4", "yes", "no"]:
        assert normalize_answer(answer) == answer  # the VQA metric compares them verbatim when annotators agree


def test_captions_are_read_literally():
    read = CaptionReader().read
    assert read("A black and white cat on a red couch").colors == {"couch": "red"}  # no colour for a two-coloured cat
    assert read("A red double-decker bus on a street").colors == {"bus": "red"}
    assert read("A hot dog on a plate").objects == {"hot dog", "plate"}  # the longest phrase wins: no dog here
    assert read("Two giraffes and three knives").objects == {"giraffe", "knife"}
    assert read("A young boy is holding a baseball bat").held == ("boy", "bat")
    assert read("A woman rides a brown horse").ridden == ("woman", "horse")
