"""Soft vs hard attention, with and without supervised attention, on the synthetic shapes set: BLEU/METEOR/CIDEr-D
and attention correctness (the named object's box for colour and shape words; the boxes of the named shape category
for shape words, as `captioner evaluate --boxes` reports it).

    captioner make-shapes data/shapes --images 2000 --seed 0
    captioner extract-features --annotations data/shapes/captions_train.json data/shapes/captions_val.json \
        --images data/shapes/images --out data/shapes/features
    python scripts/shapes_captioning_experiment.py            # trains runs/caption_shapes_{soft,hard} if absent
    python scripts/shapes_captioning_experiment.py --attention soft --supervision 0 1 --supervision-loss mass cross_entropy
"""

import argparse
import json
from pathlib import Path

import torch

from captioner.config import load_config
from captioner.data.boxes import WordRegions, read_instances
from captioner.data.coco import CocoCaptions
from captioner.data.collate import collate
from captioner.data.features import FeatureCache
from captioner.data.shapes import object_boxes
from captioner.evaluation.caption_metrics import evaluate_captions
from captioner.evaluation.grounding import caption_grounding, word_grounding
from captioner.inference import Captioner
from captioner.training.runner import train


def evaluate(model_path: Path, data: Path, beam: int) -> dict:
    captioner = Captioner.load(model_path)
    dataset = CocoCaptions(data / "captions_val.json", data / "images", features=FeatureCache(data / "features"), mode="eval")
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=collate)
    captions = {}
    for batch in loader:
        results = captioner.caption_features(batch["features"], beam_size=beam)
        captions.update({int(i): c for i, c in zip(batch["image_ids"], results)})
    scores = evaluate_captions({i: c.text for i, c in captions.items()}, dataset.references())
    sizes = {i: (128, 128) for i in captions}
    grounding = caption_grounding(captions, object_boxes(data / "instances_val.json"), captioner.grid_size, sizes)
    regions = WordRegions(read_instances(data / "instances_val.json", dataset.image_sizes()), captioner.encoder.geometry)
    words = word_grounding(captions, regions)
    words = {k: v for k, v in words.items() if k in ("n", "mean_mass", "mean_uniform", "ratio", "beat_uniform")}
    return {**scores.scores, **{f"attention_{k}": v for k, v in grounding.items()}, **{f"shape_words_{k}": v for k, v in words.items()}}


def variants(args: argparse.Namespace) -> dict[str, list[str]]:
    """Run name → config overrides: each attention type, without and with each supervision weight and form."""
    found = {}
    for attention in args.attention:
        for weight in args.supervision:
            if weight == 0:
                found[f"caption_shapes_{attention}"] = [f"model.attention={attention}"]
                continue
            for form in args.supervision_loss:
                found[f"caption_shapes_{attention}_sup{weight:g}_{form}"] = [
                    f"model.attention={attention}", f"model.attention_supervision={weight}",
                    f"model.attention_supervision_loss={form}", f"data.train_boxes={Path(args.data) / 'instances_train.json'}"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/shapes")
    parser.add_argument("--config", default="configs/caption_shapes.yaml")
    parser.add_argument("--out", default="docs/results_shapes_captioning.json")
    parser.add_argument("--attention", nargs="+", default=["soft", "hard"], choices=["soft", "hard"])
    parser.add_argument("--supervision", nargs="+", type=float, default=[0.0], metavar="LAMBDA",
                        help="weights of supervised attention to try (0 = none; default 0)")
    parser.add_argument("--supervision-loss", nargs="+", default=["mass"], choices=["mass", "cross_entropy"])
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--override", nargs="*", default=[], help="extra config overrides for every run (a.b=value)")
    parser.add_argument("--runs", default="runs", help="folder of the training runs (one is reused when its model.pt exists)")
    args = parser.parse_args()
    table = {}
    for name, overrides in variants(args).items():
        out_dir = Path(args.runs) / name
        if not (out_dir / "model.pt").is_file():
            config = load_config(args.config, [*overrides, *args.override, f"trainer.out_dir={out_dir}", "trainer.progress_bar=false"])
            train(config, force=True)
        for beam in args.beams:
            table[f"{name.removeprefix('caption_shapes_')}, beam {beam}"] = row = evaluate(out_dir / "model.pt", Path(args.data), beam)
            print(name, beam, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    Path(args.out).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
