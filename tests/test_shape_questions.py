"""Each question family of the shapes set, on hand-built scenes: every question it can ask, answered right."""

import json
import random
import re
from collections import Counter

import pytest

from captioner.data.shape_questions import FAMILIES, annotator_answers, questions_for
from captioner.data.shape_scene import ShapeObject, sample_scene
from captioner.data.shapes import make_shapes
from captioner.errors import CaptionerError

SIZE = 100


def shape(name: str, x: float, y: float) -> ShapeObject:
    color, kind = name.split()
    return ShapeObject(color, kind, (x, y, 20, 20))


# centres (15, 50), (50, 50), (85, 50): a row, every pair clearly apart left/right, none above another
ROW = [shape("red circle", 5, 40), shape("blue square", 40, 40), shape("red triangle", 75, 40)]
# an L: the green circle (15, 15) is above the blue circle (15, 85), which is left of the yellow square (85, 85)
ELL = [shape("green circle", 5, 5), shape("blue circle", 5, 75), shape("yellow square", 75, 75)]
# a diagonal: the blue circle (50, 50) has the green circle above-left of it and the yellow square below-right
DIAGONAL = [shape("green circle", 5, 5), shape("blue circle", 40, 40), shape("yellow square", 75, 75)]
# leaning: the blue square (35, 85) is far below the red circle (50, 15) and a little (15) to its left: below, not "left of"
LEANING = [shape("red circle", 40, 5), shape("blue square", 25, 75)]


def every_question(family: str, scene: list[ShapeObject], draws: int = 200) -> dict[str, set[str]]:
    """question → the answers it was given, over many seeds."""
    asked: dict[str, set[str]] = {}
    for seed in range(draws):
        for q in questions_for(scene, SIZE, random.Random(seed), [family]):
            assert q.family == family
            asked.setdefault(q.question, set()).add(q.answer)
    return asked


def present(scene: list[ShapeObject], thing: str) -> bool:
    """Does the scene hold a 'red shape', a 'circle' or a 'red circle'?"""
    words = thing.split()
    if words[-1] == "shape":
        return any(o.color == words[0] for o in scene)
    return any(o.shape == words[-1] and (len(words) == 1 or o.color == words[0]) for o in scene)


def count(scene: list[ShapeObject], thing: str) -> int:
    return sum(present([o], thing) for o in scene)


def test_two_hop_finds_the_reference_then_the_one_object_beside_it():
    assert every_question("two-hop", ROW) == {
        # only the square has a single object on each side; the circle and triangle have two on one side
        "what color is the shape to the left of the square?": {"red"},
        "what color is the shape to the right of the square?": {"red"},
        # asked about shape, the reference is named by its colour, so the question rules no shape out
        "what shape is the object to the left of the blue shape?": {"circle"},
        "what shape is the object to the right of the blue shape?": {"triangle"},
    }
    assert every_question("two-hop", DIAGONAL) == {
        "what color is the shape to the left of the blue circle?": {"green"},  # 'circle' alone would name two objects
        "what color is the shape above the blue circle?": {"green"},
        "what color is the shape to the right of the blue circle?": {"yellow"},
        "what color is the shape below the blue circle?": {"yellow"},
        "what shape is the object to the left of the blue shape?": {"circle"},
        "what shape is the object above the blue shape?": {"circle"},
        "what shape is the object to the right of the blue shape?": {"square"},
        "what shape is the object below the blue shape?": {"square"},
    }
    # in the L every object has either two objects on a side or one level with it: "beside it" is never unique
    assert every_question("two-hop", ELL) == {}
    assert every_question("two-hop", ROW[:1]) == {}  # one object: nothing beside it


def test_nearly_aligned_objects_are_asked_about_the_axis_they_are_apart_on():
    assert every_question("relation", LEANING) == {
        "is the red circle above the blue square?": {"yes"}, "is the red circle below the blue square?": {"no"},
        "is the blue square below the red circle?": {"yes"}, "is the blue square above the red circle?": {"no"},
    }
    assert every_question("two-hop", LEANING) == {
        "what color is the shape below the circle?": {"blue"}, "what color is the shape above the square?": {"red"},
        "what shape is the object below the red shape?": {"square"}, "what shape is the object above the blue shape?": {"circle"},
    }
    # a third object level with the circle: whether the square is the one "to the left of" it stays unasked
    asked = every_question("two-hop", [*LEANING, shape("green triangle", 75, 5)])
    assert not any("left of the green" in q or "left of the triangle" in q for q in asked)


@pytest.mark.parametrize("scene", [ROW, ELL, DIAGONAL], ids=["row", "ell", "diagonal"])
def test_relations_are_answered_from_the_centres(scene):
    pattern = re.compile(r"is the (\w+ \w+) (to the left of|to the right of|above|below) the (\w+ \w+)\?")
    centres = {o.name: o.center for o in scene}
    truth = {"to the left of": lambda a, b: a[0] < b[0], "to the right of": lambda a, b: a[0] > b[0],
             "above": lambda a, b: a[1] < b[1], "below": lambda a, b: a[1] > b[1]}
    asked = every_question("relation", scene)
    assert len(asked) >= 8
    for question, answers in asked.items():
        a, rel, b = pattern.fullmatch(question).groups()
        assert answers == {"yes" if truth[rel](centres[a], centres[b]) else "no"}, question
    # in the L the blue circle and the yellow square share a row: never asked whether one is above the other
    level = {"is the blue circle above the yellow square?", "is the yellow square below the blue circle?",
             "is the blue circle below the yellow square?", "is the yellow square above the blue circle?"}
    assert not level & set(every_question("relation", ELL))


@pytest.mark.parametrize("scene", [ROW, ELL], ids=["row", "ell"])
def test_negation_says_yes_exactly_when_the_thing_is_absent(scene):
    pattern = re.compile(r"is there no (.+)\?|does the image not contain an? (.+)\?")
    asked = every_question("negation", scene)
    assert any(q.startswith("does the image not contain") for q in asked) and any(q.startswith("is there no") for q in asked)
    for question, answers in asked.items():
        thing = next(g for g in pattern.fullmatch(question).groups() if g)
        assert answers == {"no" if present(scene, thing) else "yes"}, question


def test_existence_and_counting_with_attributes():
    for question, answers in every_question("exist", ROW).items():
        thing = re.fullmatch(r"is there an? (.+)\?", question).group(1)
        assert answers == {"yes" if present(ROW, thing) else "no"}
    asked = every_question("count attribute", ROW)
    assert {"how many red shapes are there?", "how many squares are there?"} <= set(asked)
    for question, answers in asked.items():
        thing = re.fullmatch(r"how many (.+)s are there\?", question).group(1)
        assert answers == {str(count(ROW, thing))}, question
    assert every_question("count", ROW) == {"how many shapes are there?": {"3"}}


def test_queries_name_an_object_that_is_alone_in_its_attribute():
    assert every_question("query color", ROW) == {"what color is the circle?": {"red"}, "what color is the square?": {"blue"},
                                                  "what color is the triangle?": {"red"}}
    assert every_question("query shape", ROW) == {"what shape is the blue object?": {"square"}}


def test_yes_no_families_are_balanced_and_counts_come_from_the_scene():
    rng = random.Random(0)
    answers: dict[str, Counter] = {name: Counter() for name in FAMILIES.names()}
    for index in range(600):
        scene = sample_scene(rng, 128)
        for q in questions_for(scene, 128, random.Random(index)):
            answers[q.family][q.answer] += 1
    for family in ("exist", "negation", "relation"):
        assert 0.44 <= answers[family]["yes"] / sum(answers[family].values()) <= 0.56, family
    for family, counter in answers.items():  # no answer dominates a family: the question alone predicts little
        assert counter.most_common(1)[0][1] / sum(counter.values()) < 0.55, family


def test_annotators_mostly_agree_on_the_truth():
    answers = annotator_answers("0", "number", random.Random(1))
    assert len(answers) == 10 and Counter(answers)["0"] + Counter(answers)["zero"] >= 7


def test_make_shapes_writes_the_family_as_question_type(tmp_path):
    paths = make_shapes(tmp_path / "s", 30, seed=1, families=["count", "two-hop", "negation"])
    annotations = json.loads(paths.annotations["train"].read_text())["annotations"]
    assert {a["question_type"] for a in annotations} == {"count", "two-hop", "negation"}
    with pytest.raises(CaptionerError, match="unknown shapes question family 'colour'"):
        make_shapes(tmp_path / "t", 4, families=["colour"])
    assert not (tmp_path / "t").exists()
