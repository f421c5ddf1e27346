"""The dynamic batcher on its own: batch size and wait limits, one key per batch, errors kept to their batch."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from captioner.serve.batching import DynamicBatcher


class Doubler:
    """A batch function that doubles numbers and remembers the batches it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[tuple[object, list[int]]] = []
        self.delay = delay

    def __call__(self, key, items: list[int]) -> list[int]:
        self.batches.append((key, list(items)))
        time.sleep(self.delay)  # the model's time: requests arriving meanwhile queue for the next batch
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {items}")
        return [2 * item for item in items]


def run(coroutine_function, *args):
    return asyncio.run(coroutine_function(*args))


async def submit_all(batcher: DynamicBatcher, items: list[int], keys=None):
    batcher.start()
    try:
        keys = keys or [None] * len(items)
        return await asyncio.gather(*(batcher.submit(i, key=k) for i, k in zip(items, keys)), return_exceptions=True)
    finally:
        await batcher.stop()


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


def test_concurrent_items_share_batches_of_at_most_max_batch(executor):
    process = Doubler()
    batcher = DynamicBatcher(process, executor, max_batch=4, max_wait=0.05)
    assert run(submit_all, batcher, list(range(10))) == [2 * i for i in range(10)]  # results go back to their callers
    assert [len(items) for _, items in process.batches] == [4, 4, 2]
    assert batcher.stats.batches == 3 and batcher.stats.items == 10 and batcher.stats.largest == 4


def test_a_lone_request_waits_no_longer_than_max_wait(executor):
    async def one():
        batcher = DynamicBatcher(Doubler(), executor, max_batch=16, max_wait=0.02)
        batcher.start()
        await batcher.submit(0)  # warm the worker thread up
        start = time.perf_counter()
        result = await batcher.submit(21)
        waited = time.perf_counter() - start
        await batcher.stop()
        return result, waited

    result, waited = run(one)
    assert result == 42 and waited >= 0.02  # it did wait for company (an upper bound would be a timing test)


def test_requests_queued_while_the_model_is_busy_go_together_without_waiting_again(executor):
    async def scenario():
        process = Doubler(delay=0.5)
        batcher = DynamicBatcher(process, executor, max_batch=16, max_wait=0.01)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(1))
        while not process.batches:  # until the first batch is running
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 7)]
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results, process.batches

    results, batches = run(scenario)
    assert results == [2, 4, 6, 8, 10, 12]
    assert [items for _, items in batches] == [[1], [2, 3, 4, 5, 6]]


def test_each_batch_holds_one_key(executor):
    process = Doubler()
    batcher = DynamicBatcher(process, executor, max_batch=8, max_wait=0.05)
    keys = ["beam 3", "beam 1", "beam 3", "beam 1", "beam 3"]
    assert run(submit_all, batcher, [1, 2, 3, 4, 5], keys) == [2, 4, 6, 8, 10]
    assert sorted(process.batches) == [("beam 1", [2, 4]), ("beam 3", [1, 3, 5])]


def test_an_error_fails_only_its_own_batch(executor):
    process = Doubler()
    batcher = DynamicBatcher(process, executor, max_batch=2, max_wait=0.05)
    results = run(submit_all, batcher, [1, -1, 3, 4])
    assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
    assert results[2:] == [6, 8]


def test_impossible_settings_are_refused(executor):
    with pytest.raises(ValueError, match="max_batch"):
        DynamicBatcher(Doubler(), executor, max_batch=0)
