"""Soft vs hard attention on the synthetic shapes set: BLEU/METEOR/CIDEr-D and attention correctness.

    captioner make-shapes data/shapes --images 2000 --seed 0
    captioner extract-features --annotations data/shapes/captions_train.json data/shapes/captions_val.json \
        --images data/shapes/images --out data/shapes/features
    python scripts/shapes_captioning_experiment.py            # trains runs/caption_shapes_{soft,hard} if absent
"""

import argparse
import json
from pathlib import Path

import torch

from captioner.config import load_config
from captioner.data.coco import CocoCaptions
from captioner.data.collate import collate
from captioner.data.features import FeatureCache
from captioner.data.shapes import object_boxes
from captioner.evaluation.caption_metrics import evaluate_captions
from captioner.evaluation.grounding import caption_grounding
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
    return {**scores.scores, **{f"attention_{k}": v for k, v in grounding.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/shapes")
    parser.add_argument("--config", default="configs/caption_shapes.yaml")
    parser.add_argument("--out", default="docs/results_shapes_captioning.json")
    args = parser.parse_args()
    table = {}
    for attention in ("soft", "hard"):
        out_dir = Path(f"runs/caption_shapes_{attention}")
        if not (out_dir / "model.pt").is_file():
            config = load_config(args.config, [f"model.attention={attention}", f"trainer.out_dir={out_dir}", "trainer.progress_bar=false"])
            train(config, force=True)
        for beam in (1, 3):
            table[f"{attention}, beam {beam}"] = row = evaluate(out_dir / "model.pt", Path(args.data), beam)
            print(attention, beam, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    Path(args.out).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
