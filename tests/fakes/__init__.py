"""Fake exchanges (real servers on loopback) and a recording event sink for source tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources._live import LiveOptions
from cryptopulse.sources.base import Backoff, EventSink, Source

from .exchange import (
    CAPTURES,
    DATA,
    FakeBinance,
    FakeCoinbase,
    FakeExchange,
    FakeKraken,
    server_frames,
)

__all__ = [
    "CAPTURES",
    "DATA",
    "FakeBinance",
    "FakeCoinbase",
    "FakeExchange",
    "FakeKraken",
    "RecordingSink",
    "fast_options",
    "running",
    "server_frames",
]


class RecordingSink:
    """An EventSink that keeps what it gets, in order."""

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.tickers: list[Ticker] = []

    async def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)

    async def on_ticker(self, ticker: Ticker) -> None:
        self.tickers.append(ticker)

    def trade_ids(self, instrument: str | None = None) -> list[str]:
        return [t.trade_id for t in self.trades if instrument in (None, t.instrument)]

    async def wait_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll `done` until true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {len(self.trades)} trades")
            await asyncio.sleep(0.01)


def fast_options(**changes: float | None) -> LiveOptions:
    """Live options that reconnect within tens of ms, so tests stay quick."""
    options = LiveOptions(silence_timeout_s=5.0, backoff=Backoff(base=0.01, cap=0.05))
    for key, value in changes.items():
        setattr(options, key, value)
    return options


@contextlib.asynccontextmanager
async def running(source: Source, sink: EventSink) -> AsyncIterator[asyncio.Task[None]]:
    """Run `source` in a task for the body; it must still be running at the end."""
    task = asyncio.create_task(source.run(sink))
    try:
        yield task
        assert not task.done(), "a live source must not return or raise by itself"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
