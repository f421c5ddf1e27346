"""The `captioner` command. Each subcommand lives in captioner/cli/<module>.py with
`add_arguments(parser)` and `run(args) -> int`; modules import torch only inside `run`, so start-up stays fast."""

import argparse
import sys
from importlib import import_module

from captioner import __version__
from captioner.allocator import keep_freed_memory
from captioner.errors import CaptionerError

# subcommand → (module under captioner.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "caption": ("caption", "caption images with a trained checkpoint (the shipped one by default)"),
    "ask": ("ask", "answer a question about an image with a VQA checkpoint"),
    "train": ("train", "train a captioning or VQA model from a YAML config"),
    "average": ("average", "average the weights of model files fine-tuned from one start (a model soup)"),
    "evaluate": ("evaluate", "caption a dataset and report BLEU, METEOR, ROUGE-L, CIDEr-D"),
    "extract-features": ("extract_features", "cache a frozen encoder's grid features for a dataset"),
    "make-shapes": ("make_shapes", "generate the synthetic shapes dataset (captions, VQA, boxes)"),
    "make-vqa-coco": ("make_vqa_coco", "generate COCO-QA-style VQA files from COCO captions and person boxes"),
    "serve": ("serve", "serve the attention explorer page and a batched JSON API for captions and questions"),
    "benchmark": ("benchmark", "measure speed ratios and write docs/PERFORMANCE.md"),
}


def _available() -> dict[str, tuple[str, str]]:
    """Only the subcommands whose module exists (features land issue by issue)."""
    from importlib.util import find_spec

    return {name: spec for name, spec in COMMANDS.items() if find_spec(f"captioner.cli.{spec[0]}") is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captioner", description="Image captioning and VQA with visual attention.")
    parser.add_argument("--version", action="version", version=f"captioner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        cmd = import_module(f"captioner.cli.{module}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    keep_freed_memory()  # forward passes reuse their buffers instead of faulting them in again (captioner.allocator)
    try:
        return int(args._run(args) or 0)
    except CaptionerError as e:
        print(f"captioner {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"captioner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
