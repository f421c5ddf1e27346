"""Question families of the synthetic shapes set, one registered generator each.

Each family asks at most one question per scene and is balanced so that the question alone predicts little:
yes/no families flip a fair coin for the answer first and then pick what to ask; counting families draw the
answer uniformly from the counts the scene offers; two-hop questions never name the reference object by the
attribute they ask about. The family's name is the `question_type` of the VQA files, so accuracy is reported
per family.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from captioner.data.shape_scene import (
    CLEAR_OFFSET, COLORS, DIRECTIONS, NUMBER_WORDS, OPPOSITE, PHRASES, SHAPES, ShapeObject, clearly, offset, with_article,
)
from captioner.registry import Registry


@dataclass(frozen=True)
class ShapeQuestion:
    question: str
    answer: str
    family: str  # written as the VQA question_type
    answer_type: str  # yes/no | number | other


Family = Callable[[list[ShapeObject], int, random.Random], ShapeQuestion | None]
FAMILIES: Registry[Family] = Registry("shapes question family")
ATTRIBUTES: dict[str, Callable[[ShapeObject], str]] = {"color": lambda o: o.color, "shape": lambda o: o.shape, "name": lambda o: o.name}
VALUES: dict[str, list[str]] = {"color": list(COLORS), "shape": list(SHAPES), "name": [f"{c} {s}" for c in COLORS for s in SHAPES]}


def noun_phrase(kind: str, value: str) -> str:
    """How a question names things with an attribute: 'red shape', 'circle', 'red circle'."""
    return f"{value} shape" if kind == "color" else value


@FAMILIES.register("count")
def count_all(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion:
    return ShapeQuestion("how many shapes are there?", str(len(objects)), "count", "number")


@FAMILIES.register("count attribute")
def count_attribute(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion:
    """'how many blue shapes are there?' / 'how many circles are there?': the answer drawn from the scene's counts."""
    kind = rng.choice(["color", "shape"])
    counts = {v: sum(ATTRIBUTES[kind](o) == v for o in objects) for v in VALUES[kind]}
    answer = rng.choice(sorted(set(counts.values())))
    value = rng.choice([v for v in VALUES[kind] if counts[v] == answer])
    return ShapeQuestion(f"how many {noun_phrase(kind, value)}s are there?", str(answer), "count attribute", "number")


def _query(objects: list[ShapeObject], rng: random.Random, by: str) -> ShapeObject | None:
    """An object alone in its `by` attribute (so that '... the circle' names one object), or None."""
    unique = [o for o in objects if sum(ATTRIBUTES[by](p) == ATTRIBUTES[by](o) for p in objects) == 1]
    return rng.choice(unique) if unique else None


@FAMILIES.register("query color")
def query_color(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion | None:
    o = _query(objects, rng, by="shape")
    return o and ShapeQuestion(f"what color is the {o.shape}?", o.color, "query color", "other")


@FAMILIES.register("query shape")
def query_shape(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion | None:
    o = _query(objects, rng, by="color")
    return o and ShapeQuestion(f"what shape is the {o.color} object?", o.shape, "query shape", "other")


def _present_or_absent(objects: list[ShapeObject], rng: random.Random, kinds: Sequence[str]) -> tuple[str, str, bool]:
    """A fair coin says whether the thing asked about is present; then (kind, value, present), the kind drawn
    among those that allow that answer (a scene with all three shapes has no absent shape)."""
    present = rng.random() < 0.5
    options = {}
    for kind in kinds:
        seen = {ATTRIBUTES[kind](o) for o in objects}
        options[kind] = sorted(seen) if present else [v for v in VALUES[kind] if v not in seen]
    kind = rng.choice([k for k in kinds if options[k]])
    return kind, rng.choice(options[kind]), present


@FAMILIES.register("exist")
def exist(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion:
    _, name, present = _present_or_absent(objects, rng, ["name"])
    return ShapeQuestion(f"is there {with_article(name)}?", "yes" if present else "no", "exist", "yes/no")


@FAMILIES.register("negation")
def negation(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion:
    """'is there no red shape?' / 'does the image not contain a circle?': yes exactly when the thing is absent."""
    kind, value, present = _present_or_absent(objects, rng, ["color", "shape", "name"])
    thing = noun_phrase(kind, value)
    text = rng.choice([f"is there no {thing}?", f"does the image not contain {with_article(thing)}?"])
    return ShapeQuestion(text, "no" if present else "yes", "negation", "yes/no")


@FAMILIES.register("relation")
def relation_question(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion | None:
    """'is the red circle to the left of the blue square?' about a pair where one is clearly to one side of the
    other (see shape_scene.clearly); yes half the time, no by asking the opposite side."""
    pairs = [(a, b, d) for a in objects for b in objects if a is not b for d in DIRECTIONS if clearly(a, d, b, size)]
    if not pairs:
        return None
    a, b, actual = rng.choice(pairs)
    truth = rng.random() < 0.5
    asked = actual if truth else OPPOSITE[actual]
    return ShapeQuestion(f"is the {a.name} {PHRASES[asked]} the {b.name}?", "yes" if truth else "no", "relation", "yes/no")


@FAMILIES.register("two-hop")
def two_hop(objects: list[ShapeObject], size: int, rng: random.Random) -> ShapeQuestion | None:
    """'what color is the shape to the left of the circle?': find the reference, then the one object on that side."""
    options = [(ref, d, target) for ref in objects for d in DIRECTIONS if (target := _only_one_towards(objects, ref, d, size))]
    if not options:
        return None
    ref, direction, target = rng.choice(options)
    asked = rng.choice(["color", "shape"])
    # name the reference by the attribute *not* asked, so the question never rules out an answer
    named = _reference_name(ref, objects, by="shape" if asked == "color" else "color")
    if asked == "color":
        return ShapeQuestion(f"what color is the shape {PHRASES[direction]} the {named}?", target.color, "two-hop", "other")
    return ShapeQuestion(f"what shape is the object {PHRASES[direction]} the {named}?", target.shape, "two-hop", "other")


def _only_one_towards(objects: list[ShapeObject], ref: ShapeObject, direction: str, size: int) -> ShapeObject | None:
    """The single object clearly `direction` of ref, when every other object lies clearly the other way along that
    axis (none level with ref, none a little that way but mostly across: "beside it" must name one object)."""
    others = [o for o in objects if o is not ref]
    hits = [o for o in others if clearly(o, direction, ref, size)]
    away = [o for o in others if offset(o, ref, direction, size) <= -CLEAR_OFFSET]
    return hits[0] if len(hits) == 1 and len(hits) + len(away) == len(others) else None


def _reference_name(ref: ShapeObject, objects: list[ShapeObject], by: str) -> str:
    """'circle' (by shape) or 'red shape' (by colour) when that names ref alone, else its full name."""
    if sum(ATTRIBUTES[by](o) == ATTRIBUTES[by](ref) for o in objects) == 1:
        return noun_phrase(by, ATTRIBUTES[by](ref))
    return ref.name


def questions_for(objects: list[ShapeObject], size: int, rng: random.Random, families: Sequence[str] | None = None) -> list[ShapeQuestion]:
    """One question of each family (all registered ones by default) that applies to the scene, in registry order."""
    asked = [FAMILIES.get(name)(objects, size, rng) for name in (families or FAMILIES.names())]
    return [q for q in asked if q is not None]


def annotator_answers(truth: str, answer_type: str, rng: random.Random) -> list[str]:
    """10 human-like answers: mostly the truth, a little seeded noise (a number word, or a wrong answer)."""
    wrong = {"yes/no": ["yes", "no"], "number": ["0", "1", "2", "3"]}.get(answer_type, list(COLORS) if truth in COLORS else list(SHAPES))
    answers = []
    for _ in range(10):
        roll = rng.random()
        if answer_type == "number" and roll < 0.1:
            answers.append(NUMBER_WORDS[int(truth)])
        elif roll > 0.93:
            answers.append(rng.choice([w for w in wrong if w != truth]))
        else:
            answers.append(truth)
    return answers
