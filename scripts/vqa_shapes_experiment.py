"""VQA reasoning variants side by side on the synthetic shapes set, beside the question-only (blind) model and the
most frequent answer of each question family: official VQA accuracy (overall, per answer type, per family) and
how much of the attention falls inside the box of the object a question names.

    captioner make-shapes data/shapes --images 4000 --seed 0
    captioner extract-features --annotations data/shapes/captions_train.json data/shapes/captions_val.json \
        --images data/shapes/images --out data/shapes/features --workers 0
    python scripts/vqa_shapes_experiment.py        # trains runs/vqa_shapes_<variant> for each variant without a model.pt
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
from captioner.evaluation.vqa_run import evaluate_cached, markdown_table, most_frequent_answer
from captioner.training.runner import train
from captioner.vqa_inference import Answer, VQAAnswerer

# variant → config overrides (on top of --config); the first is the config as written
VARIANTS = {
    "mac+coords": [],
    "blind": ["model.use_image=false"],
    "stacked+coords": ["model.reasoning=stacked"],
    "glimpses": ["model.reasoning=glimpses", "model.coord_features=false"],
    "glimpses+coords": ["model.reasoning=glimpses"],
    "stacked": ["model.reasoning=stacked", "model.coord_features=false"],
    "film+coords": ["model.reasoning=film"],
}
# question pattern → which object of the image it names (exactly one, by construction of the shapes data)
GROUNDED = {
    "what color is the X": (re.compile(r"what color is the (\w+)\?"), lambda o, word: o.shape == word),
    "what shape is the X object": (re.compile(r"what shape is the (\w+) object\?"), lambda o, word: o.color == word),
}


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


def evaluate(model_path: Path, data: Path, size: int, features: Path) -> dict:
    answerer = VQAAnswerer.load(model_path)
    items = read_vqa(data / "vqa_val_questions.json", data / "vqa_val_annotations.json")
    row, answers = evaluate_cached(answerer, items, FeatureCache(features))
    if answerer.model.config.use_image:
        row["attention"] = grounding(items, answers, object_boxes(data / "instances_val.json"), answerer.grid_size, size)
    return row


def data_overrides(data: Path, features: Path) -> list[str]:
    """Train on the shapes set the script evaluates on (--data), whatever paths the config names."""
    files = {f"{split}_{kind}": data / f"vqa_{split}_{kind}.json" for split in ("train", "val") for kind in ("questions", "annotations")}
    files.update(images_dir=data / "images", train_images_index=data / "captions_train.json", val_images_index=data / "captions_val.json")
    return [f"data.features_dir={features}", *(f"data.{key}={path}" for key, path in files.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/shapes")
    parser.add_argument("--features", help="feature cache (default DATA/features)")
    parser.add_argument("--config", default="configs/vqa_shapes.yaml")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--image-size", type=int, default=128, help="side of the shapes images (boxes are in its pixels)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--overrides", nargs="*", default=[], help="config overrides for every variant (e.g. trainer.max_epochs=5)")
    parser.add_argument("--tag", default="", help="suffix of the run folders and result keys (e.g. _448 for another encoder)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--out", default="docs/results_vqa_shapes.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, features = Path(args.data), Path(args.features or Path(args.data) / "features")
    table = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    table["most frequent answer"] = most_frequent_answer(*(read_vqa(data / f"vqa_{s}_questions.json", data / f"vqa_{s}_annotations.json")
                                                           for s in ("train", "val")))
    for name in args.variants:
        key = name + args.tag
        out_dir = Path(args.runs) / f"vqa_shapes_{key.replace('+', '_')}"
        trained = {k: v for k, v in table.get(key, {}).items() if k in ("train_steps", "train_seconds", "threads", "overrides")}
        if not (out_dir / "model.pt").is_file():
            overrides = [*data_overrides(data, features), *VARIANTS[name], *args.overrides, f"trainer.out_dir={out_dir}",
                         "trainer.progress_bar=false"]
            start = time.perf_counter()
            result = train(load_config(args.config, overrides), force=True)
            trained = {"train_steps": result.global_step, "train_seconds": round(time.perf_counter() - start), "threads": args.threads,
                       "overrides": overrides[:-2]}
        table[key] = {**evaluate(out_dir / "model.pt", data, args.image_size, features), **trained}
        print(key, json.dumps({k: table[key][k] for k in ("overall", "per_question_type")}), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(table, indent=2))
    print(markdown_table(table, "family (held-out questions)"))


if __name__ == "__main__":
    main()
