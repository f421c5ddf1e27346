"""captioner caption IMAGE|FOLDER|PATTERN ... [--recursive] [--output FILE.jsonl|.json|.csv] [--beam K] [--attention DIR]"""

import argparse
import os
import sys
import time
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


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def default_workers() -> int:
    """Image-decoding processes: the cores beyond two, at most 4. The encoder's own threads use the first two;
    on a 2-core machine a worker only competes with them (0.77x of the bare encoder with 1 worker, 0.94x
    with none, in `captioner benchmark` of 2026-11), and with none `caption_iter` runs its two lanes there."""
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
    parser.add_argument("--content-repeat-penalty", type=non_negative_float, metavar="P",
                        help="log-probability a content word (not 'a', 'of', 'on', ...) loses once it is in the caption: "
                             "inf never repeats one, 0 allows repeats (default inf)")
    parser.add_argument("--consensus", action="store_true",
                        help="the consensus caption: of 5 beam hypotheses and 10 samples, the one the others agree with "
                             "most by CIDEr-D (replaces --beam; slower)")
    add_hard_inference_argument(parser)


def decoding_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of Captioner.caption / caption_features that the options above set."""
    options = {"beam_size": args.beam, "max_len": args.max_len, "consensus": args.consensus}
    if args.no_repeat_ngram_size is not None:
        options["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    if args.content_repeat_penalty is not None:
        options["content_repeat_penalty"] = args.content_repeat_penalty
    return options


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA if available, then MPS, else CPU), cpu, cuda, cuda:1, mps (default auto)")


def load_captioner(checkpoint: str | list[str] | None, hard_inference: str | None, device: str = "auto"):
    """The model file given (the shipped one by default) on `device`, with --hard-inference applied when given;
    several files (--checkpoint repeated) caption as one ensemble."""
    from captioner.devices import resolve_device
    from captioner.inference import Captioner

    paths = [checkpoint] if checkpoint is None or isinstance(checkpoint, str) else checkpoint
    device = resolve_device(device)  # a missing device: one line, before loading
    captioners = [Captioner.load(path, device=device) for path in paths]
    if hard_inference:
        captioners = [captioner.use_hard_inference(hard_inference) for captioner in captioners]
    return captioners[0] if len(captioners) == 1 else Captioner.ensemble(captioners, paths)


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", action="append", metavar="MODEL",
                        help="model file from `captioner train` (default: the shipped COCO model); repeat it to caption "
                             "with an ensemble of models of one vocabulary and encoder (their word probabilities averaged)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="image files, folders, or glob patterns (quoted: 'photos/**/*.jpg'); images are "
                             "recognised by content, other files are listed as skipped")
    parser.add_argument("-r", "--recursive", action="store_true", help="search the subfolders of folders (and ** in patterns)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the captions to FILE instead of the terminal: .jsonl (a line per image), .json "
                             "(COCO results) or .csv; running again with the same FILE captions only the images "
                             "not yet in it")
    parser.add_argument("--force", action="store_true", help="start --output afresh, replacing the file")
    add_checkpoint_argument(parser)
    add_decoding_arguments(parser)
    parser.add_argument("--attention", metavar="DIR", help="write one attention figure per image into DIR")
    parser.add_argument("--boxes", metavar="FILE", help="with --attention: COCO instances file whose boxes (matched by "
                        "file name) are outlined on the panel of each word naming their category")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images captioned together (default 16)")
    parser.add_argument("--workers", type=non_negative_int, default=default_workers(),
                        help="image-decoding worker processes; 0 decodes in a thread of this process "
                             "(default: one per core beyond two, at most 4)")
    add_device_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary (problems are still reported)")


def run(args: argparse.Namespace) -> int:
    from captioner.data.boxes import read_instances
    from captioner.data.discovery import find_images
    from captioner.devices import resolve_device
    from captioner.errors import CaptionerError
    from captioner.outputs import open_output
    from captioner.progress import say

    if args.boxes and not args.attention:
        raise CaptionerError("--boxes outlines boxes on attention figures: give --attention DIR too")
    args.device = str(resolve_device(args.device))  # a device that is not here: one line before any work
    found = find_images(args.inputs, args.recursive, exclude=[args.output] if args.output else [])
    boxes = read_instances(args.boxes) if args.boxes else None
    output = open_output(args.output, args.force) if args.output else None
    for message in found.notes:
        say(f"captioner caption: note: {message}")
    for problem in found.skipped:
        say(f"captioner caption: skipped {problem}")
    todo = [path for path in found.images if output is None or not output.is_done(path)]
    if not todo and not args.quiet:
        say(f"captioner caption: nothing to do: all {len(found.images)} image(s) are already in {output.path}")
    try:
        failed = _caption_files(todo, found.images, output, args, boxes) if todo else 0
    finally:
        if output is not None:
            output.close()
    return 1 if found.skipped or failed else 0


def _caption_files(todo: list[Path], every: list[Path], output, args: argparse.Namespace, boxes=None) -> int:
    """Caption `todo` (of `every` image found), writing each result as it comes; returns how many were unreadable."""
    from captioner.progress import progress, say

    if output is not None and (output.done_count or output.dropped_partial):
        say(f"captioner caption: resuming {output.path}: {len(every) - len(todo)} of {len(every)} images already there"
            + (" (dropped a last line cut short by an interrupted run)" if output.dropped_partial else ""))
    captioner = load_captioner(args.checkpoint, args.hard_inference, args.device)
    figures = attention_names(every) if args.attention else {}
    bar, failed, start = progress(len(todo), "caption", quiet=args.quiet), 0, time.perf_counter()
    plain = output is None and len(args.inputs) == 1 and len(every) == 1 and Path(args.inputs[0]).is_file()
    for item in captioner.caption_iter(todo, args.batch_size, num_workers=args.workers, **decoding_options(args)):
        bar.update(1)
        if item.error:
            failed += 1
            say(f"captioner caption: skipped {item.error}")
            continue
        _emit(item.path, item.caption, output, plain)
        if args.attention:
            write_attention_figure(captioner, item.path, item.caption, Path(args.attention) / figures[item.path], boxes)
    bar.close()
    if not args.quiet and (output is not None or len(todo) > 1):
        _summary(len(todo) - failed, failed, time.perf_counter() - start, output)
    return failed


def _emit(path: Path, caption, output, plain: bool) -> None:
    from captioner.outputs import Record
    from captioner.progress import say

    if output is not None:
        output.add(Record(str(path), caption.text, caption.beams))
    else:
        say(caption.text if plain else f"{path}: {caption.text}", sys.stdout)


def write_attention_figure(captioner, image_path: Path, caption, out_path: Path, boxes=None) -> Path:
    """One image's attention figure (the photo, then a panel per generated word) and its raw maps as JSON beside it;
    with a boxes file, the labelled boxes of a word's category are outlined on its panel."""
    from captioner.data.images import load_image
    from captioner.errors import CaptionerError
    from captioner.visualize import write_caption_attention

    try:
        labelled = boxes.for_file(image_path) if boxes is not None else None
        image = load_image(image_path)
        return write_caption_attention(image, caption.words, caption.alphas, captioner.encoder.geometry, out_path, labelled)
    except OSError as e:
        raise CaptionerError(f"cannot write the attention figure {out_path}: {e.strerror or e}") from None


def attention_names(paths: list[Path]) -> dict[Path, str]:
    """Figure file name per image: STEM_attention.png, with a short hash of the path when two images share a stem."""
    import hashlib
    from collections import Counter

    stems = Counter(path.stem for path in paths)
    def name(path: Path) -> str:
        unique = stems[path.stem] == 1
        tag = "" if unique else "_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
        return f"{path.stem}{tag}_attention.png"
    return {path: name(path) for path in paths}


def _summary(done: int, failed: int, seconds: float, output) -> None:
    from captioner.progress import say

    where = f" into {output.path}" if output is not None else ""
    rate = f" ({done / seconds:.1f} images/s)" if seconds > 0 and done else ""
    say(f"captioner caption: captioned {done} image(s){where} in {seconds:.1f} s{rate}" + (f"; {failed} unreadable" if failed else ""))
