"""Pipeline stages: whether overlapping them pays on this device and thread count, and how they overlap."""

import os

import pytest
import torch

from captioner import stages


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)


def test_on_a_cpu_stages_overlap_only_where_torch_leaves_a_core_free(two_cores, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert stages.overlap_pays(torch.device("cpu"))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert not stages.overlap_pays(torch.device("cpu"))


def test_on_a_gpu_stages_always_overlap(two_cores, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert stages.overlap_pays(torch.device("cuda"))


def test_a_background_stage_yields_in_order_and_raises_where_it_failed():
    def items():
        yield from (1, 2)
        raise ValueError("third item")

    out = stages.map_in_background(lambda x: 10 * x, items())
    assert next(out) == 10 and next(out) == 20
    with pytest.raises(ValueError, match="third item"):
        next(out)


def test_interleave_searches_on_one_thread_while_the_next_batch_is_fetched():
    import threading

    seen = {"encode": set(), "search": set(), "fetch": set()}

    def batches():
        for k in range(4):
            seen["fetch"].add(threading.current_thread().name)
            yield k

    def encode(k):
        seen["encode"].add(torch.get_num_threads())
        return k * 10

    def search(x):
        seen["search"].add(torch.get_num_threads())
        return x + 1

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert list(stages.interleave(batches(), encode, search)) == [1, 11, 21, 31]  # every batch, in order
        assert seen["encode"] == {2} and seen["search"] == {1}  # the encoder on all threads, the search on one
        assert all(name.startswith("captioner-decode") for name in seen["fetch"])  # batches come from the thread beside
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(previous)


def test_interleave_raises_a_failed_fetch_where_it_happened():
    def batches():
        yield 1
        raise ValueError("corrupt batch")

    results = stages.interleave(batches(), lambda k: k, lambda k: k)
    assert next(results) == 1
    with pytest.raises(ValueError, match="corrupt batch"):
        next(results)
