"""The benchmark registry and runner: every figure is a RATIO of two things measured side by side, in one run.

Each benchmark is registered by name in `BENCHMARKS` (in one of `BENCHMARK_MODULES`) and returns one `Row` per
case it measures. Timed sides run alternately (A, B, A, B, …) and report their medians, so a background load
slows both alike; absolute numbers depend on the machine, ratios much less. `captioner benchmark` runs the suite
and writes the table.
"""

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path

from captioner.benchmarks.harness import torch_threads
from captioner.registry import Registry

# Modules whose import registers benchmarks (a new area adds its module here).
BENCHMARK_MODULES = ("captioner.benchmarks.suite", "captioner.benchmarks.self_critical", "captioner.benchmarks.serving",
                     "captioner.benchmarks.collections", "captioner.benchmarks.allocator")


@dataclass(frozen=True)
class Target:
    """What the ratio should be: at least (≥) or at most (≤) `value`."""

    at_least: bool
    value: float

    def met(self, ratio: float) -> bool:
        return ratio >= self.value if self.at_least else ratio <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.value:g}×"


@dataclass
class Row:
    benchmark: str  # registry name
    case: str  # sizes or variant measured
    ours: float
    baseline: float
    unit: str
    ratio: float  # what it is a ratio of is said in the benchmark's description
    target: Target | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.ratio)

    def as_dict(self) -> dict:
        return {**asdict(self), "target": str(self.target) if self.target else None, "met": self.met}


@dataclass(frozen=True)
class Settings:
    quick: bool  # small sizes: a smoke run in seconds, not a measurement to report
    workdir: Path  # scratch space, deleted after the run
    checkpoint: Path | None = None  # caption model for the cold-start row (default: the shipped one, if present)
    scale: float = 1.0  # fraction of the full image counts for the collections benchmarks (a slow or busy machine)

    def count(self, full: int) -> int:
        """`full` images scaled by `scale` (at least 1)."""
        return max(1, round(full * self.scale))


Benchmark = Callable[[Settings], list[Row]]
BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def run_suite(
    names: Sequence[str] | None = None,
    quick: bool = False,
    threads: int = 1,
    checkpoint: str | Path | None = None,
    log: Callable[[str], None] = print,
    scale: float = 1.0,
) -> list[Row]:
    """Run the named benchmarks (all by default) in a scratch folder; returns their rows in order.

    Every side of every benchmark runs with `threads` intra-op threads (0: torch's default), child processes
    included, so that no side gets more cores than the other. `scale` shrinks the collections benchmarks' folders.
    """
    load_benchmarks()
    chosen = [(name, BENCHMARKS.get(name)) for name in (names or BENCHMARKS.names())]  # unknown names fail first
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="captioner-benchmark-") as tmp, torch_threads(threads):
        for name, benchmark in chosen:
            start = time.perf_counter()
            workdir = Path(tmp) / name
            workdir.mkdir()
            rows += benchmark(Settings(quick, workdir, Path(checkpoint) if checkpoint else None, scale))
            log(f"{name}: done in {time.perf_counter() - start:.0f} s")
    return rows


def load_benchmarks() -> None:
    for module in BENCHMARK_MODULES:
        import_module(module)


def describe(name: str) -> str:
    """A benchmark's docstring on one line: what is compared, how, and what the ratio is."""
    return " ".join((BENCHMARKS.get(name).__doc__ or "").split())
