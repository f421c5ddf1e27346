"""Stages that overlap: iterate something in a background thread, a few items ahead of whoever consumes it.

PIL's decoders and torch's kernels release the GIL, so image decoding, the encoder and beam search, each in a
thread of its own, run at the same time on different cores. Queues are bounded: memory holds at most `depth`
items per stage, however long the input.
"""

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
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
