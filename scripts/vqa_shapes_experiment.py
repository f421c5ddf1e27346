"""Attention VQA vs the question-only (blind) baseline on the synthetic shapes set: official VQA accuracy (overall,
per answer type, per question type) and how much of the attention falls inside the box of the object a question names.

    captioner make-shapes data/shapes --images 2000 --seed 0
    captioner extract-features --annotations data/shapes/captions_train.json data/shapes/captions_val.json \
        --images data/shapes/images --out data/shapes/features
    python scripts/vqa_shapes_experiment.py        # trains runs/vqa_shapes_{full,blind,...} if absent
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from captioner.config import load_config
from captioner.data.features import FeatureCache
from captioner.data.shapes import ShapeObject, object_boxes
from captioner.data.vqa import VQAItem, read_vqa
from captioner.evaluation.attention import attention_correctness, box_mass, uniform_box_mass
from captioner.evaluation.vqa_accuracy import vqa_accuracy
from captioner.training.runner import train
from captioner.vqa_inference import Answer, VQAAnswerer

VARIANTS = {
    "full": [],
    "blind": ["model.use_image=false"],
    "full+coords": ["model.coord_features=true"],
}
# question pattern → which object of the image it names (exactly one, by construction of the shapes data)
GROUNDED = {
    "what color is the X": (re.compile(r"what color is the (\w+)\?"), lambda o, word: o.shape == word),
    "what shape is the X object": (re.compile(r"what shape is the (\w+) object\?"), lambda o, word: o.color == word),
}


def answer_all(answerer: VQAAnswerer, items: list[VQAItem], cache: FeatureCache, batch_size: int = 256) -> list[Answer]:
    answers = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        features = torch.from_numpy(np.stack([cache[item.image_id] for item in chunk]))  # (B, L, C) float16
        answers += answerer.ask_features(features, [item.question for item in chunk], top_k=1)
    return answers


def grounding(items: list[VQAItem], answers: list[Answer], boxes: dict[int, list[ShapeObject]], grid: tuple, size: int) -> dict:
    """Per question kind: mean attention mass inside the named object's box, per glimpse and for the glimpses' mean."""
    table = {}
    for kind, (pattern, names) in GROUNDED.items():
        found = [(answer.alphas, obj.bbox) for item, answer in zip(items, answers) if (m := pattern.fullmatch(item.question))
                 for obj in boxes[item.image_id] if names(obj, m.group(1))]
        maps = {"mean of glimpses": [a.mean(axis=0) for a, _ in found]}
        maps.update({f"glimpse {g + 1}": [a[g] for a, _ in found] for g in range(found[0][0].shape[0])} if found else {})
        table[kind] = {name: _correctness(alphas, [box for _, box in found], grid, size) for name, alphas in maps.items()}
    return table


def _correctness(alphas: list[np.ndarray], boxes: list[tuple], grid: tuple, size: int) -> dict:
    """Mean mass in the box beside the uniform baseline (the box's share of the image), and how often it beats it."""
    items = [(alpha, grid, box, (size, size)) for alpha, box in zip(alphas, boxes)]
    wins = [box_mass(*item) > uniform_box_mass(*item[1:]) for item in items]
    return {**attention_correctness(items), "beats_uniform": float(np.mean(wins)) if wins else float("nan")}


def evaluate(model_path: Path, data: Path, size: int) -> dict:
    answerer = VQAAnswerer.load(model_path)
    items = read_vqa(data / "vqa_val_questions.json", data / "vqa_val_annotations.json")
    cache = FeatureCache(data / "features")
    cache.check_compatible(answerer.encoder.describe())  # the grids must come from the model's own encoder
    start = time.perf_counter()
    answers = answer_all(answerer, items, cache)
    seconds = time.perf_counter() - start
    scores = vqa_accuracy({i.question_id: a.answers[0][0] for i, a in zip(items, answers)}, [i.annotation for i in items])
    row = {"overall": scores.overall, "per_answer_type": scores.per_answer_type, "per_question_type": scores.per_question_type,
           "questions": scores.n, "answer_seconds": round(seconds, 2)}
    if answerer.model.config.use_image:
        row["attention"] = grounding(items, answers, object_boxes(data / "instances_val.json"), answerer.grid_size, size)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/shapes")
    parser.add_argument("--config", default="configs/vqa_shapes.yaml")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--image-size", type=int, default=128, help="side of the shapes images (boxes are in its pixels)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--out", default="docs/results_vqa_shapes.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    for name in args.variants:
        out_dir = Path(args.runs) / f"vqa_shapes_{name.replace('+', '_')}"
        trained = {k: v for k, v in table.get(name, {}).items() if k in ("train_steps", "train_seconds", "threads")}
        if not (out_dir / "model.pt").is_file():
            overrides = [*VARIANTS[name], f"trainer.out_dir={out_dir}", "trainer.progress_bar=false"]
            start = time.perf_counter()
            result = train(load_config(args.config, overrides), force=True)
            trained = {"train_steps": result.global_step, "train_seconds": round(time.perf_counter() - start), "threads": args.threads}
        table[name] = {**evaluate(out_dir / "model.pt", Path(args.data), args.image_size), **trained}
        print(name, json.dumps(table[name]), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
