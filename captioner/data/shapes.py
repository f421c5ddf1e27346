"""Synthetic shapes: coloured shapes on a plain canvas with captions, VQA questions and every object's box.

Learnable in seconds, deterministic for a seed, and written in the real formats (COCO captions, COCO
instances, VQA v2), so the same code paths train on it as on COCO; the boxes let tests check attention.
"""

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from captioner.data.shape_questions import FAMILIES, annotator_answers, questions_for
from captioner.data.shape_scene import COLORS, NUMBER_WORDS, SHAPES, ShapeObject, draw_scene, relation, sample_scene, with_article

__all__ = ["COLORS", "SHAPES", "ShapeObject", "ShapesPaths", "captions_for", "make_shapes", "object_boxes", "grounded_word_boxes"]


@dataclass
class ShapesPaths:
    root: Path
    images: Path
    captions: dict[str, Path]
    instances: dict[str, Path]
    questions: dict[str, Path]
    annotations: dict[str, Path]


# -- language ------------------------------------------------------------------------------------------------
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


# -- files ---------------------------------------------------------------------------------------------------
def make_shapes(
    out_dir: str | Path, n_images: int, seed: int = 0, size: int = 128, val_fraction: float = 0.2, families: Sequence[str] | None = None
) -> ShapesPaths:
    """Write images, COCO captions/instances and VQA v2 questions/annotations (train and val) into out_dir.

    Each image gets one question of every family in `families` (default: all of shape_questions.FAMILIES) that
    applies to its scene. Questions draw from their own seeded generator, so the images of a seed do not depend
    on which families are asked.
    """
    if n_images < 2 or size < 32 or not 0 < val_fraction < 1:
        raise ValueError("need n_images ≥ 2, size ≥ 32 and 0 < val_fraction < 1")
    for name in families or ():
        FAMILIES.get(name)  # an unknown family is refused before anything is written
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
        questions = questions_for(objects, size, random.Random(f"{seed}-questions-{index}"), families)
        records[split].append((index + 1, file_name, objects, questions))
    paths = ShapesPaths(root, root / "images", {}, {}, {}, {})
    for split, items in records.items():
        _write_split(paths, split, items, size, random.Random(f"{seed}-{split}"))
    return paths


def _write_split(paths: ShapesPaths, split: str, items: list, size: int, rng: random.Random) -> None:
    images = [{"id": i, "file_name": f, "width": size, "height": size} for i, f, _, _ in items]
    info = {"description": f"captioner synthetic shapes ({split})", "version": "2.0"}  # 2.0: the question families of shape_questions
    captions = [{"image_id": i, "caption": c} for i, _, objs, _ in items for c in captions_for(objs, size)]
    objects = [{"image_id": i, "category_id": SHAPES.index(o.shape) + 1, "bbox": list(o.bbox), "area": o.bbox[2] * o.bbox[3],
                "iscrowd": 0, "color": o.color} for i, _, objs, _ in items for o in objs]
    categories = [{"id": k + 1, "name": s, "supercategory": "shape"} for k, s in enumerate(SHAPES)]
    questions, annotations = [], []
    for image_id, _, _, qs in items:
        for k, q in enumerate(qs):
            qid = image_id * 10 + k  # at most 10 questions per image (one per family)
            answers = annotator_answers(q.answer, q.answer_type, rng)
            questions.append({"question_id": qid, "image_id": image_id, "question": q.question})
            annotations.append({
                "question_id": qid, "image_id": image_id, "question_type": q.family, "answer_type": q.answer_type,
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
