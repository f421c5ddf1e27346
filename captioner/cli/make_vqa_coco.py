"""captioner make-vqa-coco OUT --data DIR [--splits train val] [--seed 0] [--force]"""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder for vqa_{split}_questions.json / vqa_{split}_annotations.json")
    parser.add_argument("--data", default="data/coco-mini",
                        help="folder with captions_{split}.json and, for counting questions, persons_{split}.json (default data/coco-mini)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], help="splits to build (default: train val)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the few random choices (which questions, which negatives)")
    parser.add_argument("--force", action="store_true", help="overwrite existing question files")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from captioner.data.vqa_coco import make_vqa_coco
    from captioner.errors import CaptionerError

    out = Path(args.out)
    existing = [out / f"vqa_{s}_{kind}.json" for s in args.splits for kind in ("questions", "annotations")]
    clash = [p for p in existing if p.exists()]
    if clash and not args.force:
        raise CaptionerError(f"{clash[0]} already exists; pass --force to overwrite it")
    made = make_vqa_coco(args.data, out, tuple(args.splits), seed=args.seed)
    for split, counts in made.items():
        detail = ", ".join(f"{kind} {n}" for kind, n in counts.most_common())
        print(f"{split}: {sum(counts.values())} questions ({detail}) → {out}/vqa_{split}_questions.json")
    return 0
