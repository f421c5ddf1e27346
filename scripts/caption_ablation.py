"""Score trained caption runs on coco-mini val for the ablation table in docs/RESULTS.md.

    python scripts/caption_ablation.py --run "XE (7×7)" runs/xe_lite0 --run "+ SCST" runs/scst \
        --annotations ../shared/data/coco-mini/captions_val.json --images ../shared/data/coco-mini/images \
        --out docs/results/caption_ablation.json

Each run's model.pt is decoded from the images (beam 3 with no blocking, with trigram blocking, and with trigram
and content-word blocking, the default since 2026-12-07; greedy; consensus) and scored with the COCO suite (PTB
tokenizer and METEOR when Java is present); the run's training time comes from its metrics.json. Results are merged into the JSON file (one entry per label) and the markdown table is printed.
"""

import argparse
import json
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from captioner.data.coco import CocoCaptions
from captioner.data.collate import collate
from captioner.evaluation.caption_metrics import evaluate_captions
from captioner.evaluation.run import caption_batches
from captioner.inference import Captioner

DECODINGS = {  # name → Captioner.caption_features options
    "beam 3": {"beam_size": 3, "no_repeat_ngram_size": 0, "content_repeat_penalty": 0},
    "beam 3, no repeated trigram": {"beam_size": 3, "no_repeat_ngram_size": 3, "content_repeat_penalty": 0},
    "beam 3, no repeated trigram or content word": {"beam_size": 3, "no_repeat_ngram_size": 3, "content_repeat_penalty": math.inf},
    "greedy": {"beam_size": 1, "no_repeat_ngram_size": 0, "content_repeat_penalty": 0},
    "consensus": {"consensus": True, "no_repeat_ngram_size": 3, "content_repeat_penalty": 0},  # models whose file carries the statistics
}
COLUMNS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")


def score_run(run: Path, annotations: str, images: str) -> dict:
    captioner = Captioner.load(run / "model.pt")
    dataset = CocoCaptions(annotations, images, transform=captioner.encoder.transform, mode="eval")
    loader = DataLoader(dataset, batch_size=32, collate_fn=collate)
    with torch.inference_mode():
        features = [(batch["image_ids"], captioner.encoder(batch["images"])) for batch in loader]  # encode once
    metrics = run / "metrics.json"  # a soup (`captioner average`) has no training of its own, and no metrics
    seconds = json.loads(metrics.read_text()).get("train_seconds") if metrics.is_file() else None
    entry = {"run": str(run), "train_seconds": seconds}
    for name, options in DECODINGS.items():
        if options.get("consensus") and captioner.consensus is None:
            continue
        captions = caption_batches(captioner, ({"image_ids": i, "features": f} for i, f in features), **options)
        results = {i: c.text for i, c in captions.items()}
        scores = evaluate_captions(results, {i: dataset.captions_for(i) for i in results})
        entry[name] = {**scores.scores, **scores.statistics, "java_used": scores.java_used}
    return entry


def markdown(entries: dict[str, dict]) -> str:
    header = "| model | decoding | " + " | ".join(COLUMNS) + " | words | repeated trigram | training |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 5)]
    for label, entry in entries.items():
        minutes = f"{entry['train_seconds'] / 60:.0f} min" if entry.get("train_seconds") else "—"
        for decoding in (d for d in DECODINGS if d in entry):
            s = entry[decoding]
            values = " | ".join(f"{s[c]:.3f}" if c in s else "—" for c in COLUMNS)
            lines.append(f"| {label} | {decoding} | {values} | {s['mean_length']:.1f} | {s['repeated_trigram_share']:.1%} | {minutes} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, action="append", metavar=("LABEL", "RUN_DIR"), default=[])
    parser.add_argument("--annotations", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--out", default="docs/results/caption_ablation.json")
    args = parser.parse_args()
    out = Path(args.out)
    entries = json.loads(out.read_text()) if out.is_file() else {}
    for label, run in args.run:
        entries[label] = score_run(Path(run), args.annotations, args.images)
        print(f"{label}: {entries[label]['beam 3']['CIDEr-D']:.3f} CIDEr-D (beam 3)", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, indent=1))
    print(markdown(entries))


if __name__ == "__main__":
    main()
