"""captioner caption IMAGE [IMAGE ...] [--checkpoint PATH] [--beam K] [--attention DIR]"""

import argparse
import sys
from pathlib import Path


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--checkpoint", help="model file from `captioner train` (default: the shipped COCO model)")
    parser.add_argument("--beam", type=positive_int, default=3, help="beam size; 1 = greedy (default 3)")
    parser.add_argument("--max-len", type=positive_int, default=20, help="longest caption in words (default 20)")
    parser.add_argument("--attention", metavar="DIR", help="write one attention figure per image into DIR")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")


def run(args: argparse.Namespace) -> int:
    from captioner.data.images import load_image
    from captioner.errors import CaptionerError
    from captioner.inference import Captioner

    captioner = Captioner.load(args.checkpoint, device=args.device)
    failed = 0
    for path in args.images:
        try:
            image = load_image(path)
            result = captioner.caption([image], beam_size=args.beam, max_len=args.max_len)[0]
        except CaptionerError as e:
            print(f"captioner caption: error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(result.text if len(args.images) == 1 else f"{path}: {result.text}", flush=True)
        if args.attention:
            from captioner.visualize import caption_attention_figure

            out = Path(args.attention) / f"{Path(path).stem}_attention.png"
            caption_attention_figure(image, result.words, result.alphas, captioner.grid_size, out)
    return 1 if failed else 0
