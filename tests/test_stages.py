"""Pipeline stages: whether overlapping them pays on this device and thread count."""

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
