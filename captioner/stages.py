"""Work that runs side by side in threads: stages that overlap (a background thread a few items ahead of whoever
consumes it), and lanes (whole items in turn across threads, each thread with its share of torch's).

PIL's decoders and torch's kernels release the GIL, so image decoding, the encoder and beam search, each in a
thread of its own, run at the same time on different cores. Queues are bounded: memory holds at most `depth`
items per stage or lane, however long the input.
"""

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")
U = TypeVar("U")

_END = object()


def overlap_pays(device: torch.device) -> bool:
    """Whether a pipeline's stages should run in threads of their own on `device`: on a GPU, or on a CPU with cores
    that torch's intra-op threads leave free. Where those threads already fill the cores, threads that interrupt
    them cost more than the overlap saves (2 cores, 2 threads, 448-px shipped model: a folder captioned at 9.2
    images/s overlapped and 11.4 in one thread; with 1 thread, 9.0 overlapped and 8.0 in one thread)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return device.type != "cpu" or torch.get_num_threads() < cores


def lanes_pay(device: torch.device) -> int:
    """How many lanes `in_lanes` should run on `device`: two on a CPU where torch's threads fill two or more cores
    (each lane then runs with half of them), else one. On 2 cores a whole batch per core (decoding, the encoder and
    beam search on one thread each) keeps both cores busy, where torch's two threads leave one idle through
    decoding and share small beam-search kernels badly: a folder of 640×480 photos went 80 → 69 ms per photo."""
    threads = torch.get_num_threads()
    return 2 if device.type == "cpu" and threads >= 2 and not overlap_pays(device) else 1


def in_lanes(fn: Callable[[T], U], items: Sequence[T], lanes: int, depth: int = 1) -> Iterator[U]:
    """fn(item) for each item, in order, computed by `lanes` threads: item i in lane i mod lanes, each lane at
    most `depth` results ahead and running torch with torch.get_num_threads() // lanes intra-op threads (torch's
    setting is restored when the iteration ends). An exception in a lane is raised here, at its item. Never more
    lanes than items: one item runs here, on all of torch's threads."""
    lanes = min(lanes, len(items))
    if lanes < 2:
        yield from map(fn, items)
        return
    threads = max(1, torch.get_num_threads() // lanes)
    original = torch.get_num_threads()
    streams = [_Background(_lane(fn, items[j::lanes], threads), depth, f"captioner-lane-{j}") for j in range(lanes)]
    try:
        for i in range(len(items)):
            yield next(streams[i % lanes])
    finally:
        for stream in streams:
            stream.close()
        torch.set_num_threads(original)  # a lane's setting also became the default for threads started after it


def _lane(fn: Callable[[T], U], items: Sequence[T], threads: int) -> Iterator[U]:
    torch.set_num_threads(threads)  # this thread's intra-op threads (OpenMP's setting is per thread)
    for item in items:
        yield fn(item)


def in_background(items: Iterable[T], depth: int = 2, name: str = "captioner-stage") -> Iterator[T]:
    """Yield `items`, produced by a daemon thread that stays at most `depth` items ahead; the thread starts at the
    first item asked for.

    An exception in the thread is raised here, at the item where it happened. Closing this iterator early
    (break, an error downstream) stops the thread at its next item.
    """
    stream = _Background(items, depth, name)
    try:
        yield from stream
    finally:
        stream.close()


class _Background:
    """A daemon thread producing `items` from the moment this is made; iterate for its results, close to stop it."""

    def __init__(self, items: Iterable[T], depth: int, name: str) -> None:
        self.buffer: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=_produce, args=(items, self.buffer, self.stop), name=name, daemon=True)
        self.thread.start()

    def __iter__(self) -> "_Background":
        return self

    def __next__(self) -> T:
        kind, value = self.buffer.get()
        if kind is _END:
            raise StopIteration
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        self.stop.set()
        _drain(self.buffer)  # unblock a producer waiting to put
        self.thread.join(timeout=10)


def map_in_background(fn: Callable[[T], U], items: Iterable[T], depth: int = 1, name: str = "captioner-stage") -> Iterator[U]:
    """fn(item) for each item, computed in a background thread (which also pulls `items`)."""
    return in_background((fn(item) for item in items), depth, name)


def _produce(items: Iterable, buffer: queue.Queue, stop: threading.Event) -> None:
    iterator = iter(items)
    try:
        for item in iterator:
            if not _put(buffer, ("item", item), stop):
                return
        _put(buffer, (_END, None), stop)
    except BaseException as error:  # handed to the consumer, raised there
        _put(buffer, ("error", error), stop)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # a generator upstream (another stage) stops too


def _put(buffer: queue.Queue, entry: tuple, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            buffer.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(buffer: queue.Queue) -> None:
    while True:
        try:
            buffer.get_nowait()
        except queue.Empty:
            return
