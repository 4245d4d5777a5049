"""Candle aggregation, bucketed by exchange time and aligned to interval boundaries.

Rules (docs/decisions.md has the reasoning):
- A trade belongs to the bucket ``time - time % interval`` (UTC epoch alignment).
- A trade for the open bucket amends it, even if it arrives out of order: open and close
  are the prices of the earliest and latest trade *by exchange time* (ties by arrival).
- A trade for a bucket older than the open one is *late*: counted per interval, not applied.
- An interval with no trades produces no candle.
- A trade id seen recently for the same instrument is a duplicate and is ignored: ids are
  remembered for `dedupe_ms` of exchange time behind the newest trade, but always the last
  `dedupe_keep` and never more than `dedupe_window` (memory is bounded by the trade rate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle, Trade

DEFAULT_INTERVALS: tuple[str, ...] = tuple(INTERVALS)


@dataclass(slots=True)
class _Bucket:
    start: int
    first_time: int
    last_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int

    @classmethod
    def from_trade(cls, start: int, trade: Trade) -> _Bucket:
        p = trade.price
        return cls(start, trade.time, trade.time, p, p, p, p, trade.size, p * trade.size, 1)

    def add(self, trade: Trade) -> None:
        p = trade.price
        if trade.time < self.first_time:
            self.first_time = trade.time
            self.open = p
        if trade.time >= self.last_time:
            self.last_time = trade.time
            self.close = p
        if p > self.high:
            self.high = p
        if p < self.low:
            self.low = p
        self.volume += trade.size
        self.quote_volume += p * trade.size
        self.trades += 1

    def candle(self, instrument: str, interval: str, closed: bool) -> Candle:
        return Candle(
            instrument,
            interval,
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote_volume,
            self.trades,
            closed,
        )


class CandleAggregator:
    """Builds candles of several intervals for one instrument from its trades, incrementally."""

    def __init__(
        self,
        instrument: str,
        intervals: Sequence[str] = DEFAULT_INTERVALS,
        dedupe_window: int = 10_000,
        dedupe_ms: int = 60_000,
        dedupe_keep: int = 200,
    ) -> None:
        self.instrument = instrument
        self.intervals = tuple(intervals)
        self._lengths = [INTERVALS[i] for i in self.intervals]
        self._open: list[_Bucket | None] = [None] * len(self.intervals)
        # Start of the newest bucket already closed, per interval: anything at or before it is late.
        self._closed_through: list[int] = [-1] * len(self.intervals)
        self._seen: set[str] = set()
        # Remembered ids in arrival order, and their trades' exchange times (two deques of
        # existing objects: no tuple per trade).
        self._seen_ids: deque[str] = deque()
        self._seen_times: deque[int] = deque()
        self._newest = 0
        self._dedupe_window = dedupe_window
        self._dedupe_ms = dedupe_ms
        self._dedupe_keep = min(dedupe_keep, dedupe_window)
        self.duplicates = 0
        self.late: dict[str, int] = dict.fromkeys(self.intervals, 0)

    def _is_duplicate(self, trade_id: str, time: int) -> bool:
        if not trade_id:
            return False
        seen = self._seen
        if trade_id in seen:
            return True
        seen.add(trade_id)
        ids, times = self._seen_ids, self._seen_times
        ids.append(trade_id)
        times.append(time)
        if time > self._newest:
            self._newest = time
        if len(ids) > self._dedupe_keep:
            # Forget what is older than the time window (all of it: the window shrinks
            # when the rate drops) or past the hard cap, down to the last `dedupe_keep`.
            horizon = self._newest - self._dedupe_ms
            while len(ids) > self._dedupe_keep and (
                times[0] < horizon or len(ids) > self._dedupe_window
            ):
                seen.discard(ids.popleft())
                times.popleft()
        return False

    def add(self, trade: Trade, updates: bool = True) -> list[Candle]:
        """Apply one trade; return the candles it closed and (with `updates`) the open
        candles it changed. Without, the caller reads them later with `open_candles`."""
        if self._is_duplicate(trade.trade_id, trade.time):
            self.duplicates += 1
            return []
        out: list[Candle] = []
        for k, length in enumerate(self._lengths):
            start = trade.time - trade.time % length
            bucket = self._open[k]
            interval = self.intervals[k]
            if bucket is not None and start == bucket.start:
                bucket.add(trade)
            elif start <= self._closed_through[k] or (bucket is not None and start < bucket.start):
                self.late[interval] += 1
                continue
            else:
                if bucket is not None:
                    out.append(bucket.candle(self.instrument, interval, closed=True))
                    self._closed_through[k] = bucket.start
                bucket = _Bucket.from_trade(start, trade)
                self._open[k] = bucket
            if updates:
                out.append(bucket.candle(self.instrument, interval, closed=False))
        return out

    def close_due(self, now_ms: int) -> list[Candle]:
        """Close every open candle whose interval ended at or before `now_ms`."""
        out: list[Candle] = []
        for k, length in enumerate(self._lengths):
            bucket = self._open[k]
            if bucket is not None and bucket.start + length <= now_ms:
                out.append(bucket.candle(self.instrument, self.intervals[k], closed=True))
                self._closed_through[k] = bucket.start
                self._open[k] = None
        return out

    def open_candles(self) -> list[Candle]:
        """The candles still open, as they stand (closed=False)."""
        return [
            b.candle(self.instrument, self.intervals[k], closed=False)
            for k, b in enumerate(self._open)
            if b is not None
        ]


def _unique(trades: Iterable[Trade]) -> list[Trade]:
    """Trades in input order without repeats of an (instrument, trade id) already seen."""
    seen: set[tuple[str, str]] = set()
    out: list[Trade] = []
    for trade in trades:
        if trade.trade_id:
            key = (trade.instrument, trade.trade_id)
            if key in seen:
                continue
            seen.add(key)
        out.append(trade)
    return out


def aggregate_trades(trades: Iterable[Trade], interval: str) -> list[Candle]:
    """Batch path: candles of one interval from trades in any order (all closed).

    Same rules as the incremental path, minus lateness: ties in time go by input order,
    and a repeated (instrument, trade id) is a duplicate and is ignored.
    """
    length = INTERVALS[interval]
    buckets: dict[tuple[str, int], _Bucket] = {}
    for trade in sorted(_unique(trades), key=lambda t: t.time):
        key = (trade.instrument, trade.time - trade.time % length)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = _Bucket.from_trade(key[1], trade)
        else:
            bucket.add(trade)
    return [
        b.candle(instrument, interval, closed=True)
        for (instrument, _), b in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    ]


def merge_candles(candles: Iterable[Candle], interval: str) -> list[Candle]:
    """Roll candles up into a coarser interval (input sorted by open_time, one instrument)."""
    length = INTERVALS[interval]
    out: list[Candle] = []
    for c in candles:
        start = c.open_time - c.open_time % length
        if out and out[-1].open_time == start:
            prev = out[-1]
            out[-1] = Candle(
                prev.instrument,
                interval,
                start,
                prev.open,
                max(prev.high, c.high),
                min(prev.low, c.low),
                c.close,
                prev.volume + c.volume,
                prev.quote_volume + c.quote_volume,
                prev.trades + c.trades,
                prev.closed and c.closed,
            )
        else:
            out.append(
                Candle(
                    c.instrument,
                    interval,
                    start,
                    c.open,
                    c.high,
                    c.low,
                    c.close,
                    c.volume,
                    c.quote_volume,
                    c.trades,
                    c.closed,
                )
            )
    return out
