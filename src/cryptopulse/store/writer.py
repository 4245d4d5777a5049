"""Batches pipeline output into store writes: never one write per event."""

from __future__ import annotations

import asyncio
import logging

from cryptopulse.domain.models import Candle, Trade
from cryptopulse.store.sql import SQLStore

log = logging.getLogger(__name__)


class StoreWriter:
    """Collects trades and candles and writes them every `interval_s` or `batch_size` items.

    Candles are keyed by (instrument, interval, open_time), so a candle amended a hundred
    times between flushes is written once. The buffer is bounded: past `max_pending`
    trades, the oldest pending trades are dropped and counted (candles are never dropped).
    """

    def __init__(
        self,
        store: SQLStore,
        interval_s: float = 0.25,
        batch_size: int = 2000,
        max_pending: int = 200_000,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._trades: list[Trade] = []
        self._candles: dict[tuple[str, str, int], Candle] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.dropped_trades = 0
        self.written_trades = 0
        self.written_candles = 0
        # (instrument, interval) -> `written_candles` after the last flush that wrote one
        # of its candles: what a cached candle page of that series checks (api/_cache.py).
        self.flushed: dict[tuple[str, str], int] = {}

    def add_trade(self, trade: Trade) -> None:
        self._trades.append(trade)
        if len(self._trades) > self.max_pending:
            excess = len(self._trades) - self.max_pending
            del self._trades[:excess]
            self.dropped_trades += excess
        if len(self._trades) >= self.batch_size:
            self._wake.set()

    def add_candle(self, candle: Candle) -> None:
        self._candles[(candle.instrument, candle.interval, candle.open_time)] = candle

    @property
    def pending(self) -> int:
        return len(self._trades) + len(self._candles)

    def written_stamp(self, instrument: str, interval: str) -> int:
        """Which flush last wrote a candle of the series (0: none since the start); read
        it before a store read, and the read is current while it stays the same."""
        return self.flushed.get((instrument, interval), 0)

    async def flush(self) -> None:
        async with self._flush_lock:
            trades, self._trades = self._trades, []
            pending, self._candles = self._candles, {}
            candles = list(pending.values())
            try:
                await self.store.insert_trades(trades)
                await self.store.upsert_candles(candles)
            except Exception:
                # Put the batch back so a transient failure loses nothing.
                self._trades[:0] = trades
                for c in candles:
                    self._candles.setdefault((c.instrument, c.interval, c.open_time), c)
                raise
            self.written_trades += len(trades)
            self.written_candles += len(candles)
            if candles:  # the count only grows: it tells this flush from every earlier one
                self.flushed.update(dict.fromkeys([k[:2] for k in pending], self.written_candles))

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if self.pending:
                try:
                    await self.flush()
                except Exception:
                    log.exception("store flush failed; will retry")
                    await asyncio.sleep(1.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="store-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()
