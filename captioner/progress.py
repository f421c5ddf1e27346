"""Progress for long work, on stderr: tqdm's bar (rate, ETA) on a terminal, one plain line every so often otherwise.

Messages printed while a bar is showing go through `say`, which clears the bar first so that lines never
interleave with it.
"""

import sys
from typing import TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # seconds between progress lines when stderr is a file or a pipe


class _Lines:
    """A stream for tqdm that turns its carriage-return refreshes into whole lines (readable in logs and pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(total: int | None, what: str, unit: str = "img", quiet: bool = False,
             stream: TextIO | None = None, interval: float = LOG_INTERVAL_S) -> tqdm:
    """A progress counter for `total` items (call .update(n), then .close()); `quiet` shows nothing.

    On a terminal: a bar refreshed several times a second with items/s and the time left, once the work has
    taken a second. Otherwise: a line every `interval` seconds, and one at the end if any was printed. Short
    work shows nothing.
    """
    stream = stream or sys.stderr
    interactive = _is_terminal(stream)
    return tqdm(
        total=total, desc=what, unit=unit, disable=quiet, file=stream if interactive else _Lines(stream),
        dynamic_ncols=interactive, ascii=not interactive, smoothing=0.1, delay=1.0 if interactive else interval,
        mininterval=0.2 if interactive else interval, maxinterval=max(10.0, interval), miniters=None if interactive else 1,
    )


def say(message: str, stream: TextIO | None = None) -> None:
    """Print one line without breaking a progress bar that is showing (on stderr unless another stream is given)."""
    stream = stream or sys.stderr
    tqdm.write(message, file=stream)
    stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like object without isatty
        return False
