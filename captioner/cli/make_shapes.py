"""captioner make-shapes OUT --images N [--seed S] [--size 128] [--val-fraction 0.2] [--families F ...] [--force]"""

import argparse

from captioner.cli.caption import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (must be empty unless --force)")
    parser.add_argument("--images", type=positive_int, default=1000, help="number of images (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=positive_int, default=128, help="canvas side in pixels (default 128)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--families", nargs="+", metavar="FAMILY",
                        help="question families to ask (default all: count, count attribute, exist, negation, "
                             "query color, query shape, relation, two-hop); quote names with spaces")
    parser.add_argument("--force", action="store_true", help="write into a non-empty folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from captioner.data.shapes import make_shapes
    from captioner.errors import CaptionerError

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise CaptionerError(f"{out} is not empty; pass --force to write into it")
    try:
        paths = make_shapes(out, args.images, seed=args.seed, size=args.size, val_fraction=args.val_fraction,
                            families=args.families)
    except ValueError as e:
        raise CaptionerError(str(e)) from None
    print(f"wrote {args.images} images, captions, boxes and VQA questions (train/val) to {paths.root}")
    return 0
