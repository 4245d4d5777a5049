"""Micro-batching: concurrent single-row requests become one vectorized model call.

Callers `submit` one feature row and await their own future. A consumer takes the first
pending row, waits up to `max_wait_s` for more (or until `max_batch` are pending; only
under load, i.e. when the previous batch or the queue holds more than one row), runs
the whole batch as one call in a worker thread, and hands each caller its value. While a
batch runs, new rows queue up, so under load batches grow by themselves and the wait
never adds latency. A full queue refuses at once (`Overloaded`, a 503 with Retry-After);
a failing call fails the callers of that batch only (`BatchFailed`) and the next batch
runs as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
import numpy.typing as npt

__all__ = ["BatchFailed", "MicroBatcher", "Overloaded"]

log = logging.getLogger(__name__)

Rows = npt.NDArray[np.float32]
Predict = Callable[[Rows], npt.NDArray[np.float64]]


class Overloaded(Exception):
    """The queue is full: retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__("prediction queue is full")
        self.retry_after_s = retry_after_s


class BatchFailed(Exception):
    """The model call of this request's batch failed (the service carries on)."""


class MicroBatcher:
    """Gathers rows for one model; see the module docstring."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch: int = 256,
        max_wait_s: float = 0.002,
        max_queue: int = 10_000,
        executor: Executor | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_s >= 0")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.executor = executor
        self.batches = 0  # model calls made
        self.rows = 0  # rows predicted
        self.failures = 0  # batches whose call raised
        self._last_size = 0
        self._pending: list[tuple[Rows, asyncio.Future[float]]] = []
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, row: Rows) -> float:
        """P(up) of one feature row; raises `Overloaded` or `BatchFailed`."""
        if len(self._pending) >= self.max_queue:
            raise Overloaded()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ml-batcher")
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wakeup.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def close(self) -> None:
        """Stop the consumer; callers still waiting get `BatchFailed`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending, self._pending = self._pending, []
        for _, future in pending:
            if not future.done():
                future.set_exception(BatchFailed("the model was unloaded"))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            # Wait for company only under load (the last batch had it): a lone caller on
            # an idle service is answered at once, not after the window.
            gather = self._last_size > 1 or len(self._pending) > 1
            if gather and len(self._pending) < self.max_batch and self.max_wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            if len(self._pending) < self.max_batch:
                self._full.clear()
            if not self._pending:
                self._wakeup.clear()
            # Callers that gave up (client gone) need no work.
            batch = [(row, fut) for row, fut in batch if not fut.done()]
            self._last_size = len(batch)
            if batch:
                await self._call(loop, batch)

    async def _call(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Rows, asyncio.Future[float]]]
    ) -> None:
        rows = np.stack([row for row, _ in batch])
        try:
            values = await loop.run_in_executor(self.executor, self.predict, rows)
            if len(values) != len(batch):
                raise ValueError(f"{len(values)} values for {len(batch)} rows")
        except Exception as exc:
            self.failures += 1
            log.warning("prediction batch of %d failed: %s", len(batch), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(BatchFailed(str(exc)))
            return
        self.batches += 1
        self.rows += len(batch)
        for (_, future), value in zip(batch, values.tolist(), strict=True):
            if not future.done():
                future.set_result(value)
