"""How the benchmarks run things: alternating timings, one thread count for every side, fresh Python processes,
the CLI's own defaults, and Lightning kept quiet."""

import argparse
import logging
import os
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import torch

from captioner.errors import CaptionerError


# -- timing --------------------------------------------------------------------------------------------------------
def race(sides: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each side; calls alternate so that background load falls on every side alike."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run under `count` intra-op threads (0: leave torch's setting); the previous count is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# -- other processes and the rest of the package ----------------------------------------------------------------------
def run_python(command: list[str]) -> str:
    """Run a Python command with this checkout importable and this process's thread count; its stdout, or a CaptionerError."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise CaptionerError(f"benchmark process failed ({' '.join(command[:4])} …): {result.stderr.strip()[-800:]}")
    return result.stdout


def cli_defaults(command_module: str, *options: str) -> dict[str, object]:
    """The defaults a `captioner` subcommand gives its options, so the benchmark runs what users run."""
    parser = argparse.ArgumentParser()
    import_module(f"captioner.cli.{command_module}").add_arguments(parser)
    return {name: parser.get_default(name) for name in options}


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's start-up banners and advice would drown the benchmark's own output."""
    names = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
