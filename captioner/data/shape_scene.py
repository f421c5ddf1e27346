"""Scenes of the synthetic shapes set: coloured shapes on a plain canvas, how to draw them, and where they lie
relative to each other (the geometry that captions and questions share)."""

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 215),
    "yellow": (235, 200, 30), "purple": (140, 60, 180), "orange": (245, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
NUMBER_WORDS = {0: "zero", 1: "one", 2: "two", 3: "three"}
CLEAR_OFFSET = 0.15  # centres this far apart (a share of the canvas side) along an axis are clearly apart on it

# direction → (axis of the centre: 0 = x, 1 = y; sign of other − reference), and how a sentence says it
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (0, -1), "right": (0, 1), "above": (1, -1), "below": (1, 1)}
PHRASES = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
ACROSS = {"left": "above", "right": "above", "above": "left", "below": "left"}  # a direction of the other axis


@dataclass(frozen=True)
class ShapeObject:
    color: str
    shape: str
    bbox: tuple[float, float, float, float]  # x, y, w, h in pixels

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.bbox
        return x + w / 2, y + h / 2


def sample_scene(rng: random.Random, size: int) -> list[ShapeObject]:
    """1–3 objects with distinct (colour, shape), non-overlapping, sorted left to right."""
    kinds = rng.sample([(c, s) for c in COLORS for s in SHAPES], rng.randint(1, 3))
    objects: list[ShapeObject] = []
    for color, shape in kinds:
        for _ in range(200):
            side = rng.uniform(0.22, 0.34) * size
            box = (rng.uniform(1, size - side - 1), rng.uniform(1, size - side - 1), side, side)
            if all(not _overlap(box, o.bbox, margin=2) for o in objects):
                objects.append(ShapeObject(color, shape, tuple(round(v, 1) for v in box)))
                break
    return sorted(objects, key=lambda o: o.center[0])


def _overlap(a: tuple, b: tuple, margin: float) -> bool:
    return not (a[0] + a[2] + margin <= b[0] or b[0] + b[2] + margin <= a[0] or a[1] + a[3] + margin <= b[1] or b[1] + b[3] + margin <= a[1])


def draw_scene(objects: list[ShapeObject], size: int, rng: random.Random) -> Image.Image:
    background = tuple(rng.randint(228, 250) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    for o in objects:
        x, y, w, h = o.bbox
        fill = COLORS[o.color]
        if o.shape == "circle":
            pen.ellipse([x, y, x + w, y + h], fill=fill)
        elif o.shape == "square":
            pen.rectangle([x, y, x + w, y + h], fill=fill)
        else:
            pen.polygon([(x, y + h), (x + w, y + h), (x + w / 2, y)], fill=fill)
    return image


# -- geometry --------------------------------------------------------------------------------------------------
def relation(a: ShapeObject, b: ShapeObject, size: int) -> str | None:
    """'left of' / 'right of' / 'above' / 'below' when the offset is clear, else None (the captions' rule)."""
    dx, dy = b.center[0] - a.center[0], b.center[1] - a.center[1]
    if abs(dx) >= CLEAR_OFFSET * size and abs(dx) >= abs(dy) / 2:
        return "to the left of" if dx > 0 else "to the right of"
    if abs(dy) >= CLEAR_OFFSET * size:
        return "above" if dy > 0 else "below"
    return None


def offset(other: ShapeObject, reference: ShapeObject, direction: str, size: int) -> float:
    """How far `other` lies in `direction` from `reference`, in canvas sides (negative: the other way)."""
    axis, sign = DIRECTIONS[direction]
    return sign * (other.center[axis] - reference.center[axis]) / size


def clearly(other: ShapeObject, direction: str, reference: ShapeObject, size: int) -> bool:
    """Is `other` clearly to the `direction` of `reference`: by CLEAR_OFFSET of the canvas along that axis, and at
    least half as far along it as across it (the captions' rule). A shape far below and a little to the left is
    below the reference; whether it is also "to the left" is a question a person would not answer with certainty."""
    along = offset(other, reference, direction, size)
    across = abs(offset(other, reference, ACROSS[direction], size))
    return along >= CLEAR_OFFSET and along >= across / 2


def with_article(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
