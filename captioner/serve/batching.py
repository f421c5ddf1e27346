"""Dynamic batching: requests that arrive close together run through the model as one batch.

A request waits at most `max_wait` seconds for others to join it (less when `max_batch` arrive first). While the
model is busy, new requests queue; when it is free they go at once, since they have already waited. Requests
carry a key (e.g. their decoding options) and a batch only holds requests with the key of its oldest request.
The model runs on one worker thread, so the event loop stays free to accept and decode uploads meanwhile.
"""

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Item, Result]):
    key: Hashable
    item: Item
    arrival: float
    future: "asyncio.Future[Result]"


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size → how many batches had it


class DynamicBatcher(Generic[Item, Result]):
    """Gathers `submit`ted items into batches of at most `max_batch`, waiting at most `max_wait` seconds.

    `process(key, items)` runs on `executor` and must return one result per item, in order; an exception it
    raises is raised to every request of that batch (and only that batch).
    """

    def __init__(
        self,
        process: Callable[[Hashable, list[Item]], Sequence[Result]],
        executor: Executor,
        max_batch: int = 16,
        max_wait: float = 0.010,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be ≥ 1 and max_wait ≥ 0, got {max_batch} and {max_wait}")
        self.process, self.executor = process, executor
        self.max_batch, self.max_wait = max_batch, max_wait
        self.stats = BatchStats()
        self._pending: deque[_Pending[Item, Result]] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start gathering (call from the running event loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while self._pending:
            self._pending.popleft().future.cancel()

    async def submit(self, item: Item, key: Hashable = None) -> Result:
        """Queue one item and wait for its result."""
        if self._worker is None:
            raise RuntimeError("the batcher is not running: call start() first")
        loop = asyncio.get_running_loop()
        pending = _Pending(key, item, loop.time(), loop.create_future())
        self._pending.append(pending)
        self._arrived.set()
        return await pending.future

    async def _run(self) -> None:
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self._gather(self._pending[0])
            await self._execute(self._take(self._pending[0].key))

    async def _gather(self, oldest: _Pending) -> None:
        """Wait until max_batch items share the oldest's key or the oldest has waited max_wait."""
        loop = asyncio.get_running_loop()
        deadline = oldest.arrival + self.max_wait
        while self._count(oldest.key) < self.max_batch and (delay := deadline - loop.time()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), delay)  # cancelling a wait loses no item
            except asyncio.TimeoutError:
                return

    def _count(self, key: Hashable) -> int:
        return sum(1 for p in self._pending if p.key == key)

    def _take(self, key: Hashable) -> list[_Pending[Item, Result]]:
        """Remove and return up to max_batch pending items with this key, oldest first; the others keep their order."""
        taken, kept = [], deque()
        while self._pending:
            p = self._pending.popleft()
            (taken if p.key == key and len(taken) < self.max_batch else kept).append(p)
        self._pending = kept
        return [p for p in taken if not p.future.done()]  # a request whose client went away is dropped

    async def _execute(self, batch: list[_Pending[Item, Result]]) -> None:
        if not batch:
            return
        key, items = batch[0].key, [p.item for p in batch]
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.process, key, items)
            if len(results) != len(items):
                raise RuntimeError(f"batch of {len(items)} items gave {len(results)} results")
        except Exception as error:  # every request of this batch learns why; the batcher keeps serving
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(error)
            return
        self._count_batch(len(batch))
        for p, result in zip(batch, results):
            if not p.future.done():
                p.future.set_result(result)

    def _count_batch(self, size: int) -> None:
        stats = self.stats
        stats.batches, stats.items, stats.largest = stats.batches + 1, stats.items + size, max(stats.largest, size)
        stats.sizes[size] = stats.sizes.get(size, 0) + 1
