"""captioner caption IMAGE [IMAGE ...] [--checkpoint PATH] [--beam K] [--attention DIR]"""

import argparse
import os
import sys
from pathlib import Path


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def default_workers() -> int:
    """Image-decoding processes: the cores beyond two, at most 4. The encoder's own threads use the first two;
    on a 2-core machine a worker only competes with them (0.77x of the bare encoder with 1 worker, 0.94x
    with none, in `captioner benchmark`)."""
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def add_hard_inference_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hard-inference", choices=["argmax", "expectation"],
                        help="hard-attention models: most likely location (the model's default) or expected context")


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Beam size, caption length and repetition control, shared by caption and evaluate."""
    parser.add_argument("--beam", type=positive_int, default=3, help="beam size; 1 = greedy (default 3)")
    parser.add_argument("--max-len", type=positive_int, default=20, help="longest caption in words (default 20)")
    parser.add_argument("--no-repeat-ngram-size", type=non_negative_int, metavar="N",
                        help="never repeat a word N-gram within a caption; 0 allows repeats (default 3)")
    add_hard_inference_argument(parser)


def decoding_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of Captioner.caption / caption_features that the options above set."""
    options = {"beam_size": args.beam, "max_len": args.max_len}
    if args.no_repeat_ngram_size is not None:
        options["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    return options


def load_captioner(checkpoint: str | None, hard_inference: str | None, device: str = "cpu"):
    """The model file given (the shipped one by default), with --hard-inference applied when given."""
    from captioner.inference import Captioner

    captioner = Captioner.load(checkpoint, device=device)
    return captioner.use_hard_inference(hard_inference) if hard_inference else captioner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--checkpoint", help="model file from `captioner train` (default: the shipped COCO model)")
    add_decoding_arguments(parser)
    parser.add_argument("--attention", metavar="DIR", help="write one attention figure per image into DIR")
    parser.add_argument("--boxes", metavar="FILE", help="with --attention: COCO instances file whose boxes (matched by "
                        "file name) are outlined on the panel of each word naming their category")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images captioned together (default 16)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")


def run(args: argparse.Namespace) -> int:
    from captioner.data.boxes import read_instances
    from captioner.errors import CaptionerError

    if args.boxes and not args.attention:
        raise CaptionerError("--boxes outlines boxes on attention figures: give --attention DIR too")
    boxes = read_instances(args.boxes) if args.boxes else None
    captioner = load_captioner(args.checkpoint, args.hard_inference, args.device)
    failed = 0
    for start in range(0, len(args.images), args.batch_size):
        failed += _caption_chunk(captioner, args.images[start : start + args.batch_size], args, boxes)
    return 1 if failed else 0


def _caption_chunk(captioner, paths: list[str], args: argparse.Namespace, boxes=None) -> int:
    """Caption the readable images of `paths` in one batch; report each unreadable one. Returns how many failed."""
    from captioner.data.images import load_image
    from captioner.errors import CaptionerError

    images = {}
    for path in paths:
        try:
            images[path] = load_image(path)
        except CaptionerError as e:
            print(f"captioner caption: error: {e}", file=sys.stderr)
    results = captioner.caption(list(images.values()), **decoding_options(args)) if images else []
    for (path, image), result in zip(images.items(), results):
        print(result.text if len(args.images) == 1 else f"{path}: {result.text}", flush=True)
        if args.attention:
            from captioner.visualize import write_caption_attention

            out = Path(args.attention) / f"{Path(path).stem}_attention.png"
            labelled = boxes.for_file(path) if boxes else None
            write_caption_attention(image, result.words, result.alphas, captioner.encoder.geometry, out, labelled)
    return len(paths) - len(images)
