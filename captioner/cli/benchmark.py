"""captioner benchmark [--only NAME ...] [--quick] [--threads N] [--checkpoint MODEL] [--scale F] [--out FILE] [--note TEXT]"""

import argparse
import sys
import time
from pathlib import Path

from captioner.cli.caption import non_negative_int

DEFAULT_OUT = Path("docs/PERFORMANCE.md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these benchmarks (default: all; an unknown name lists the known ones)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds, not numbers to report")
    parser.add_argument("--threads", type=non_negative_int, default=1,
                        help="intra-op threads for every side of every benchmark, child processes included "
                             "(default 1: steady numbers beside other work; 0 = torch's default)")
    parser.add_argument("--checkpoint", metavar="MODEL",
                        help="caption model for the cold-start row (default: the shipped one, or a generated one)")
    parser.add_argument("--scale", type=_fraction, default=1.0,
                        help="fraction of the full folder sizes for the collections benchmarks (default 1: 2,000 "
                             "images, 1,000 vs 10,000); for a slow or busy machine, and said in the report's rows")
    parser.add_argument("--out", help=f"markdown report to write (default: {DEFAULT_OUT} after a full run; "
                                      "with --quick or --only, only where given)")
    parser.add_argument("--note", help="a sentence on the conditions of this run, added to the report's machine facts")


def run(args: argparse.Namespace) -> int:
    from captioner.benchmarks.report import machine_facts, markdown_report, markdown_table
    from captioner.benchmarks.core import run_suite

    before, start = machine_facts(), time.perf_counter()
    rows = run_suite(args.only, args.quick, args.threads, args.checkpoint, log=_progress, scale=args.scale)
    minutes = (time.perf_counter() - start) / 60
    print(markdown_table(rows))
    out = Path(args.out) if args.out else None if args.quick or args.only else DEFAULT_OUT
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        given = {"Intra-op threads for every side": str(args.threads or "torch's default")}
        given |= {"Conditions": args.note} if args.note else {}
        out.write_text(markdown_report(rows, _command(args), before | given, machine_facts() | given, minutes))
        print(f"wrote {out}")
    return 0


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout carries only the table


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this report."""
    parts = ["captioner benchmark"]
    if args.only:
        parts.append("--only " + " ".join(args.only))
    if args.quick:
        parts.append("--quick")
    if args.threads != 1:
        parts.append(f"--threads {args.threads}")
    if args.checkpoint:
        parts.append(f"--checkpoint {args.checkpoint}")
    if args.scale != 1:
        parts.append(f"--scale {args.scale:g}")
    return " ".join(parts)
