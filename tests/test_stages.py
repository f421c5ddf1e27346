"""Pipeline stages and lanes: whether they pay on this device and thread count, and that they keep order."""

import os
import threading

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


def test_two_lanes_where_torchs_threads_fill_two_cores_of_a_cpu(two_cores, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert stages.lanes_pay(torch.device("cpu")) == 2
    assert stages.lanes_pay(torch.device("cuda")) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert stages.lanes_pay(torch.device("cpu")) == 1  # one thread: the stages overlap instead


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


def test_lanes_yield_in_order_with_their_share_of_torchs_threads_and_restore_it():
    before = torch.get_num_threads()
    seen = []

    def work(item):
        seen.append((item, torch.get_num_threads(), threading.current_thread().name))
        return 10 * item

    assert list(stages.in_lanes(work, list(range(7)), lanes=2)) == [0, 10, 20, 30, 40, 50, 60]
    assert {name for item, _, name in seen if item % 2 == 0} == {"captioner-lane-0"}
    assert {name for item, _, name in seen if item % 2 == 1} == {"captioner-lane-1"}
    assert {threads for _, threads, _ in seen} == {max(1, before // 2)}
    assert torch.get_num_threads() == before


def test_a_lane_raises_where_it_failed_and_closing_early_stops_every_lane():
    def work(item):
        if item == 3:
            raise ValueError("item 3")
        return item

    out = stages.in_lanes(work, list(range(6)), lanes=2)
    assert [next(out) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(out)
    first = stages.in_lanes(lambda item: item, list(range(100)), lanes=2)
    assert next(first) == 0
    first.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("captioner-lane")]


def test_a_single_item_runs_in_this_thread_on_all_of_torchs_threads():
    seen = stages.in_lanes(lambda item: (torch.get_num_threads(), threading.current_thread().name), [0], lanes=2)
    assert list(seen) == [(torch.get_num_threads(), threading.current_thread().name)]
