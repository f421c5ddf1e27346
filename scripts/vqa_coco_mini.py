"""The shipped real-photo answerer in one command: COCO-QA-style questions from coco-mini (make-vqa-coco), the
feature cache of the encoder, the answerer and the question-only model trained on the train photos, both scored
on the val photos beside the most frequent answer per question type, training and answering speed (from the
cache and from JPEGs), and with --ship the model file copied into the package. Steps already done (question files,
cache, trained runs) are reused.

    python scripts/vqa_coco_mini.py --ship                                   # the encoder of configs/vqa_coco_mini.yaml
    python scripts/vqa_coco_mini.py --ship --encoder efficientnet_lite0      # retrain for another shipped encoder
"""

import argparse
import json
import time
from pathlib import Path

import torch

from captioner.config import RunConfig, load_config
from captioner.data.coco import read_json
from captioner.data.features import FeatureCache, extract_features
from captioner.data.vqa import read_vqa
from captioner.data.vqa_coco import make_vqa_coco
from captioner.encoders import encoder_from_config
from captioner.evaluation.vqa_run import evaluate_cached, markdown_table, most_frequent_answer
from captioner.training.runner import train
from captioner.vqa_inference import SHIPPED_ANSWERER, VQAAnswerer

VARIANTS = {"full": [], "question only": ["model.use_image=false"]}
MAX_SHIPPED_MB = 15


def prepare(config: RunConfig, data: Path) -> None:
    """The question files and the feature cache the config names, built when missing."""
    c = config.data
    if not Path(c.train_questions).is_file():
        made = make_vqa_coco(data, Path(c.train_questions).parent)
        print("questions:", {split: sum(n.values()) for split, n in made.items()}, flush=True)
    if not (Path(c.features_dir) / "meta.json").is_file():
        encoder = encoder_from_config(config.encoder)
        images = {int(img["id"]): Path(c.images_dir) / img["file_name"]
                  for index in (c.train_images_index, c.val_images_index) for img in read_json(index)["images"]}
        _, stats = extract_features(encoder, images, c.features_dir)
        print(f"feature cache {c.features_dir}: {stats['images']} images, {stats['images_per_s']:.1f} images/s", flush=True)


def train_once(config: RunConfig) -> dict:
    """Train unless the run folder already holds a model; the training time and steps of a fresh run."""
    out = Path(config.trainer.out_dir)
    if (out / "model.pt").is_file():
        return {}
    start = time.perf_counter()
    result = train(config, force=True)
    seconds = time.perf_counter() - start
    return {"train_seconds": round(seconds), "train_steps": result.global_step}


def jpeg_speed(answerer: VQAAnswerer, config: RunConfig, count: int) -> float:
    """Questions per second answered from the JPEG files (decoding and encoder included), batches of 16."""
    items = read_vqa(config.data.val_questions, config.data.val_annotations)[:count]
    files = {int(img["id"]): img["file_name"] for img in read_json(config.data.val_images_index)["images"]}
    paths = [Path(config.data.images_dir) / files[i.image_id] for i in items]
    start = time.perf_counter()
    answerer.answer(paths, [i.question for i in items], top_k=1, batch_size=16)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/vqa_coco_mini.yaml")
    parser.add_argument("--encoder", help="encoder registry name (default: the config's); its cache is data/coco-mini-<name>")
    parser.add_argument("--data", default="data/coco-mini", help="coco-mini: captions_{train,val}.json, persons_*.json, images/")
    parser.add_argument("--overrides", nargs="*", default=[], help="config overrides for both models")
    parser.add_argument("--speed-questions", type=int, default=256, help="val questions answered from JPEGs for the speed figure")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (one trains fastest on a busy shared machine)")
    parser.add_argument("--ship", action="store_true", help=f"copy the full model to {SHIPPED_ANSWERER} (≤ {MAX_SHIPPED_MB} MB)")
    parser.add_argument("--out", default="docs/results_vqa_coco_mini.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoder = args.encoder or load_config(args.config).encoder.name
    common = [f"encoder.name={encoder}", f"data.features_dir=data/coco-mini-{encoder}", *args.overrides]
    configs = {name: load_config(args.config, [*common, *extra, f"trainer.out_dir=runs/vqa_coco_mini_{encoder}_{name.replace(' ', '_')}",
                                                "trainer.progress_bar=false"]) for name, extra in VARIANTS.items()}
    prepare(configs["full"], Path(args.data))
    data = configs["full"].data
    train_items, val_items = read_vqa(data.train_questions, data.train_annotations), read_vqa(data.val_questions, data.val_annotations)
    table = {"most frequent answer": most_frequent_answer(train_items, val_items)}
    for name, config in configs.items():
        trained = train_once(config)
        answerer = VQAAnswerer.load(Path(config.trainer.out_dir) / "model.pt")
        table[name], _ = evaluate_cached(answerer, val_items, FeatureCache(data.features_dir))
        table[name].update(trained, epochs=config.trainer.max_epochs, train_questions=len(train_items))
        print(name, table[name]["overall"], table[name]["per_question_type"], flush=True)
    full = VQAAnswerer.load(Path(configs["full"].trainer.out_dir) / "model.pt")
    table["full"]["jpeg_questions_per_s"] = round(jpeg_speed(full, configs["full"], args.speed_questions), 1)
    summary = {"encoder": encoder, "threads": args.threads, "overrides": args.overrides, "results": table}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(markdown_table(table, "question type (val questions)", by_size=True))
    if args.ship:
        full.meta = {**full.meta, "trained_on": "coco-mini train photos, questions of captioner make-vqa-coco",
                     "val_accuracy": table["full"]["per_question_type"] | {"overall": table["full"]["overall"]}}
        path = full.save(SHIPPED_ANSWERER, force=True)
        megabytes = path.stat().st_size / 2**20
        print(f"shipped {path} ({megabytes:.1f} MB)")
        if megabytes > MAX_SHIPPED_MB:
            raise SystemExit(f"{path} is {megabytes:.1f} MB, over the {MAX_SHIPPED_MB} MB the package allows")


if __name__ == "__main__":
    main()
