"""Synthetic shapes: coloured shapes on a plain canvas with captions, VQA questions and every object's box.

Learnable in seconds, deterministic for a seed, and written in the real formats (COCO captions, COCO
instances, VQA v2), so the same code paths train on it as on COCO; the boxes let tests check attention.
"""

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 215),
    "yellow": (235, 200, 30), "purple": (140, 60, 180), "orange": (245, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


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


@dataclass
class ShapesPaths:
    root: Path
    images: Path
    captions: dict[str, Path]
    instances: dict[str, Path]
    questions: dict[str, Path]
    annotations: dict[str, Path]


# -- scenes ----------------------------------------------------------------------------------------------------
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


# -- language ------------------------------------------------------------------------------------------------
def relation(a: ShapeObject, b: ShapeObject, size: int) -> str | None:
    """'left of' / 'right of' / 'above' / 'below' when the offset is clear, else None."""
    dx, dy = b.center[0] - a.center[0], b.center[1] - a.center[1]
    if abs(dx) >= 0.15 * size and abs(dx) >= abs(dy) / 2:
        return "to the left of" if dx > 0 else "to the right of"
    if abs(dy) >= 0.15 * size:
        return "above" if dy > 0 else "below"
    return None


def with_article(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def captions_for(objects: list[ShapeObject], size: int) -> list[str]:
    """3–4 phrasings; the first (objects listed left to right) is the canonical one."""
    names = [with_article(o.name) for o in objects]
    if len(objects) == 1:
        return [names[0], f"a single {objects[0].name}", f"one {objects[0].name} on a plain background"]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    captions = [listed, f"{NUMBER_WORDS[len(objects)]} shapes: {listed}"]
    rel = relation(objects[0], objects[1], size)
    if rel:
        captions.append(f"{names[0]} {rel} {names[1]}")
    captions.append(f"there are {NUMBER_WORDS[len(objects)]} shapes")
    return captions


def questions_for(objects: list[ShapeObject], size: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """2–4 (question, answer, question_type, answer_type) tuples: colour, shape, count, yes/no, relation."""
    shape_counts = Counter(o.shape for o in objects)
    color_counts = Counter(o.color for o in objects)
    qs = [("how many shapes are there?", str(len(objects)), "how many", "number")]
    unique_shape = [o for o in objects if shape_counts[o.shape] == 1]
    if unique_shape:
        o = rng.choice(unique_shape)
        qs.append((f"what color is the {o.shape}?", o.color, "what color is the", "other"))
    unique_color = [o for o in objects if color_counts[o.color] == 1]
    if unique_color:
        o = rng.choice(unique_color)
        qs.append((f"what shape is the {o.color} object?", o.shape, "what shape is the", "other"))
    qs.append(_existence_question(objects, rng))
    if len(objects) >= 2:
        a, b = rng.sample(objects, 2)
        if relation(a, b, size) in ("to the left of", "to the right of"):
            asked = rng.choice(["left", "right"])
            truth = "yes" if relation(a, b, size) == f"to the {asked} of" else "no"
            qs.append((f"is the {a.name} to the {asked} of the {b.name}?", truth, "is the", "yes/no"))
    return rng.sample(qs, min(len(qs), 4))


def _existence_question(objects: list[ShapeObject], rng: random.Random) -> tuple[str, str, str, str]:
    if rng.random() < 0.5:
        return f"is there {with_article(rng.choice(objects).name)}?", "yes", "is there a", "yes/no"
    present = {o.name for o in objects}
    absent = rng.choice([f"{c} {s}" for c in COLORS for s in SHAPES if f"{c} {s}" not in present])
    return f"is there {with_article(absent)}?", "no", "is there a", "yes/no"


def annotator_answers(truth: str, answer_type: str, rng: random.Random) -> list[str]:
    """10 human-like answers: mostly the truth, a little seeded noise (a number word, or a wrong answer)."""
    wrong = {"yes/no": ["yes", "no"], "number": ["1", "2", "3"]}.get(answer_type, list(COLORS) if truth in COLORS else list(SHAPES))
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


# -- files ---------------------------------------------------------------------------------------------------
def make_shapes(out_dir: str | Path, n_images: int, seed: int = 0, size: int = 128, val_fraction: float = 0.2) -> ShapesPaths:
    """Write images, COCO captions/instances and VQA v2 questions/annotations (train and val) into out_dir."""
    if n_images < 2 or size < 32 or not 0 < val_fraction < 1:
        raise ValueError("need n_images ≥ 2, size ≥ 32 and 0 < val_fraction < 1")
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    n_val = max(1, round(n_images * val_fraction))
    records = {"train": [], "val": []}
    for index in range(n_images):
        objects = sample_scene(rng, size)
        file_name = f"shapes_{index:06d}.png"
        draw_scene(objects, size, rng).save(root / "images" / file_name)
        split = "val" if index >= n_images - n_val else "train"
        records[split].append((index + 1, file_name, objects, questions_for(objects, size, rng)))
    paths = ShapesPaths(root, root / "images", {}, {}, {}, {})
    for split, items in records.items():
        _write_split(paths, split, items, size, random.Random(f"{seed}-{split}"))
    return paths


def _write_split(paths: ShapesPaths, split: str, items: list, size: int, rng: random.Random) -> None:
    images = [{"id": i, "file_name": f, "width": size, "height": size} for i, f, _, _ in items]
    info = {"description": f"captioner synthetic shapes ({split})", "version": "1.0"}
    captions = [{"image_id": i, "caption": c} for i, _, objs, _ in items for c in captions_for(objs, size)]
    objects = [{"image_id": i, "category_id": SHAPES.index(o.shape) + 1, "bbox": list(o.bbox), "area": o.bbox[2] * o.bbox[3],
                "iscrowd": 0, "color": o.color} for i, _, objs, _ in items for o in objs]
    categories = [{"id": k + 1, "name": s, "supercategory": "shape"} for k, s in enumerate(SHAPES)]
    questions, annotations = [], []
    for image_id, _, _, qs in items:
        for k, (question, truth, q_type, a_type) in enumerate(qs):
            qid = image_id * 10 + k
            answers = annotator_answers(truth, a_type, rng)
            questions.append({"question_id": qid, "image_id": image_id, "question": question})
            annotations.append({
                "question_id": qid, "image_id": image_id, "question_type": q_type, "answer_type": a_type,
                "multiple_choice_answer": Counter(answers).most_common(1)[0][0],
                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": n + 1} for n, a in enumerate(answers)],
            })
    common = {"info": info, "licenses": []}
    vqa_common = {"info": info, "task_type": "Open-Ended", "data_type": "shapes", "license": {}, "data_subtype": split}
    files = {
        ("captions", f"captions_{split}.json"): {**common, "images": images, "annotations": _numbered(captions)},
        ("instances", f"instances_{split}.json"): {**common, "images": images, "annotations": _numbered(objects), "categories": categories},
        ("questions", f"vqa_{split}_questions.json"): {**vqa_common, "questions": questions},
        ("annotations", f"vqa_{split}_annotations.json"): {**vqa_common, "annotations": annotations},
    }
    for (kind, name), payload in files.items():
        (paths.root / name).write_text(json.dumps(payload))
        getattr(paths, kind)[split] = paths.root / name


def _numbered(annotations: list[dict]) -> list[dict]:
    return [{"id": n + 1, **a} for n, a in enumerate(annotations)]


# -- grounding (for attention checks) ----------------------------------------------------------------------------
def object_boxes(instances_path: str | Path) -> dict[int, list[ShapeObject]]:
    """image_id → its objects, read back from an instances file written by make_shapes."""
    data = json.loads(Path(instances_path).read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    boxes: dict[int, list[ShapeObject]] = {img["id"]: [] for img in data["images"]}
    for a in data["annotations"]:
        boxes[a["image_id"]].append(ShapeObject(a["color"], names[a["category_id"]], tuple(a["bbox"])))
    return boxes


def grounded_word_boxes(words: list[str], objects: list[ShapeObject]) -> list[tuple[int, tuple]]:
    """(position, box) for each colour or shape word that names exactly one object of the image."""
    grounded = []
    for position, word in enumerate(words):
        named = [o for o in objects if word in (o.color, o.shape)]
        if len(named) == 1:
            grounded.append((position, named[0].bbox))
    return grounded
