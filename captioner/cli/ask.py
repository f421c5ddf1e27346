"""captioner ask IMAGE [IMAGE|FOLDER|PATTERN ...] "how many people are in the picture?" [--checkpoint PATH] [--top-k 5]
[--attention PATH] [--caption]"""

import argparse
from pathlib import Path

from captioner.cli.caption import add_device_argument, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns (quoted)")
    parser.add_argument("question", help="the question, quoted")
    parser.add_argument("--checkpoint", help="VQA model file from `captioner train` with a vqa config "
                                             "(default: the shipped real-photo answerer, trained on coco-mini)")
    parser.add_argument("-r", "--recursive", action="store_true", help="search the subfolders of folders (and ** in patterns)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="how many answers to print (default 5)")
    parser.add_argument("--attention", metavar="PATH",
                        help="write the attention figure (one panel per glimpse): FILE.png for one image, "
                             "else a folder with one figure per image")
    parser.add_argument("--caption", action="store_true",
                        help="also caption each image with the shipped caption model (from the same encoder pass when both read the same grid)")
    add_device_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from captioner.cli.caption import attention_names
    from captioner.data.discovery import find_images
    from captioner.devices import resolve_device
    from captioner.errors import CaptionerError
    from captioner.progress import progress, say
    from captioner.vqa_inference import VQAAnswerer

    if not args.question.strip():
        raise CaptionerError("the question is empty")
    device = resolve_device(args.device)
    found = find_images(args.images, args.recursive)  # no image at all: one line before the model loads
    for problem in found.skipped:
        say(f"captioner ask: skipped {problem}")
    single = len(args.images) == 1 and len(found.images) == 1 and Path(args.images[0]).is_file()
    figures = {found.images[0]: Path(args.attention)} if single and args.attention else {}
    if args.attention and not single:
        figures = {path: Path(args.attention) / name for path, name in attention_names(found.images).items()}
    answerer = VQAAnswerer.load(args.checkpoint, device=device)
    answerer.check_question(args.question)  # a question of only unknown words: one line before any image
    captioner = _shared_captioner(answerer, device) if args.caption else None
    bar, failed = progress(len(found.images), "ask", quiet=args.quiet), 0
    for path in found.images:
        failed += not _answer(answerer, captioner, path, args, single, figures.get(path))
        bar.update(1)
    bar.close()
    return 1 if found.skipped or failed else 0


def _shared_captioner(answerer, device):
    """The shipped captioner, reading the answerer's encoder pass when both models read the same grid (one encoder
    in memory, one pass per image); else it encodes each image itself."""
    from captioner.inference import Captioner
    from captioner.pipeline import share_encoder_if_same

    captioner = Captioner.load(device=device)
    share_encoder_if_same(captioner, answerer)  # different encoder settings or weights: each keeps its own
    return captioner


def _answer(answerer, captioner, path: Path, args: argparse.Namespace, single: bool, figure: Path | None) -> bool:
    """Print one image's answers (and caption, and write its figure); False when the image cannot be read."""
    import sys

    from captioner.data.images import load_image
    from captioner.errors import CaptionerError
    from captioner.progress import say

    try:
        image = load_image(path)
    except CaptionerError as e:
        say(f"captioner ask: error: {e}" if single else f"captioner ask: skipped {e}")  # as caption words them
        return False
    if captioner is not None:
        from captioner.pipeline import describe

        if captioner.encoder is answerer.encoder:  # one encoder pass for both models
            described = describe(captioner, answerer, [image], [args.question], top_k=args.top_k)[0]
            caption, result = described.caption, described.answers[0]
        else:  # the models read different grids (e.g. a VQA model of your own): one pass each
            caption, result = captioner.caption([image])[0], answerer.ask(image, args.question, top_k=args.top_k)
        say(f"caption: {caption.text}" if single else f"{path}: caption: {caption.text}", sys.stdout)
    else:
        result = answerer.ask(image, args.question, top_k=args.top_k)
    if single:
        for answer, probability in result.answers:
            say(f"{answer}\t{probability:.3f}", sys.stdout)
    else:
        say(f"{path}: " + ", ".join(f"{answer} ({probability:.3f})" for answer, probability in result.answers), sys.stdout)
    if figure is not None:
        from captioner.visualize import question_attention_figure

        question_attention_figure(image, args.question, result.answers, result.alphas, answerer.grid_size, figure)
    return True
