"""The micro-batcher: gathering, batch size, full queue, a failing batch, gone callers."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import numpy.typing as npt
import pytest

from cryptopulse.ml.batcher import BatchFailed, MicroBatcher, Overloaded


def row(value: float) -> npt.NDArray[np.float32]:
    return np.array([value, 0.0], dtype=np.float32)


class Doubler:
    """A real (tiny) vectorized model: 2 x the first column; records its batch sizes."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.sizes: list[int] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        self.sizes.append(len(rows))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and self.fail_on in rows[:, 0]:
            raise RuntimeError("model blew up")
        return rows[:, 0].astype(np.float64) * 2


async def test_concurrent_requests_share_calls_off_the_event_loop() -> None:
    model = Doubler()
    batcher = MicroBatcher(model, max_batch=64, max_wait_s=0.005)
    values = await asyncio.gather(*(batcher.submit(row(i)) for i in range(200)))
    assert values == [2.0 * i for i in range(200)]
    assert sum(model.sizes) == 200 and len(model.sizes) <= 8
    assert max(model.sizes) <= 64
    assert threading.main_thread().name not in model.threads
    assert batcher.batches == len(model.sizes) and batcher.rows == 200
    await batcher.close()


async def test_a_lone_request_waits_at_most_the_window() -> None:
    batcher = MicroBatcher(Doubler(), max_batch=1000, max_wait_s=0.002)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await batcher.submit(row(4)) == 8.0
    assert loop.time() - start < 0.5
    await batcher.close()


async def test_a_full_queue_refuses_at_once() -> None:
    batcher = MicroBatcher(Doubler(), max_batch=2, max_wait_s=0.01, max_queue=3)
    tasks = [asyncio.create_task(batcher.submit(row(i))) for i in range(4)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[:3] == [0.0, 2.0, 4.0]
    assert isinstance(results[3], Overloaded) and results[3].retry_after_s >= 1
    assert await batcher.submit(row(5)) == 10.0  # room again
    await batcher.close()


async def test_a_failing_batch_fails_only_its_callers() -> None:
    model = Doubler(fail_on=13.0)
    batcher = MicroBatcher(model, max_batch=4, max_wait_s=0.005)
    results = await asyncio.gather(
        *(batcher.submit(row(i)) for i in range(12, 20)), return_exceptions=True
    )
    # Rows 12..15 are one batch (it holds 13), 16..19 the next.
    assert all(isinstance(r, BatchFailed) for r in results[:4])
    assert results[4:] == [32.0, 34.0, 36.0, 38.0]
    assert batcher.failures == 1
    assert await batcher.submit(row(1)) == 2.0


async def test_a_caller_that_gives_up_does_not_break_the_batch() -> None:
    batcher = MicroBatcher(Doubler(), max_batch=10, max_wait_s=0.02)
    gone = asyncio.create_task(batcher.submit(row(1)))
    stays = asyncio.create_task(batcher.submit(row(2)))
    await asyncio.sleep(0)
    gone.cancel()
    assert await stays == 4.0
    with pytest.raises(asyncio.CancelledError):
        await gone
    await batcher.close()


async def test_close_fails_waiting_callers() -> None:
    batcher = MicroBatcher(Doubler(), max_batch=10, max_wait_s=5.0)
    waiting = [asyncio.create_task(batcher.submit(row(i))) for i in range(2)]
    await asyncio.sleep(0.01)  # two rows: the consumer waits for more (up to 5 s)
    await batcher.close()
    for task in waiting:
        with pytest.raises(BatchFailed):
            await task


async def test_a_lone_caller_on_an_idle_service_does_not_wait() -> None:
    model = Doubler()
    batcher = MicroBatcher(model, max_batch=10, max_wait_s=5.0)
    assert await asyncio.wait_for(batcher.submit(row(3)), 1.0) == 6.0
    assert model.sizes == [1]
    await batcher.close()


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Doubler(), max_batch=0)
