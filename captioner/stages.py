"""Stages that overlap: iterate something in a background thread, a few items ahead of whoever consumes it.

PIL's decoders and torch's kernels release the GIL, so image decoding, the encoder and beam search, each in a
thread of its own, run at the same time on different cores. Queues are bounded: memory holds at most `depth`
items per stage, however long the input. Where torch's threads already fill the cores, `interleave` overlaps
only what does not need them all: decoding beside a one-thread search.
"""

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")

_END = object()


def overlap_pays(device: torch.device) -> bool:
    """Whether a pipeline's stages should run in threads of their own on `device`: on a GPU, or on a CPU with cores
    that torch's intra-op threads leave free. Where those threads already fill the cores, threads that interrupt
    them cost more than the overlap saves (2 cores, 2 threads, 448-px shipped model: a folder captioned at 9.2
    images/s overlapped and 11.4 in one thread; with 1 thread, 9.0 overlapped and 8.0 in one thread)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return device.type != "cpu" or torch.get_num_threads() < cores


def in_background(items: Iterable[T], depth: int = 2, name: str = "captioner-stage") -> Iterator[T]:
    """Yield `items`, produced by a daemon thread that stays at most `depth` items ahead.

    An exception in the thread is raised here, at the item where it happened. Closing this iterator early
    (break, an error downstream) stops the thread at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, buffer, stop), name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind is _END:
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        _drain(buffer)  # unblock a producer waiting to put
        thread.join(timeout=10)


def map_in_background(fn: Callable[[T], U], items: Iterable[T], depth: int = 1, name: str = "captioner-stage") -> Iterator[U]:
    """fn(item) for each item, computed in a background thread (which also pulls `items`)."""
    return in_background((fn(item) for item in items), depth, name)


def interleave(batches: Iterable[T], encode: Callable[[T], U], search: Callable[[U], V], name: str = "captioner-decode") -> Iterator[V]:
    """search(encode(batch)) for each batch, where torch's threads fill the cores: the encoder runs on all of them,
    then the search runs on one while the next batch is pulled from `batches` (decoded) in a thread on the other.

    Beam search gains little from a second thread (its matrix multiplies have a few rows per image) and decoding
    releases the GIL, so the two share the cores where the encoder alone could use both (`overlap_pays` false).
    """
    iterator = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix=name) as pool:
        pending = pool.submit(next, iterator, _END)
        while (batch := pending.result()) is not _END:
            encoded = encode(batch)
            pending = pool.submit(next, iterator, _END)
            with intra_op_threads(1):
                result = search(encoded)
            yield result


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to `count` for the block (process-wide), then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
