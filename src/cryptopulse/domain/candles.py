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
from dataclasses import dataclass, replace

from cryptopulse.domain._untracked import untrack, untrack_tree
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
        bucket = cls(start, trade.time, trade.time, p, p, p, p, trade.size, p * trade.size, 1)
        untrack(bucket)  # numbers only; an aggregator's buckets live for minutes to a day
        return bucket

    def starting_at(self, start: int) -> _Bucket:
        """A copy that starts at `start` (a higher interval's fold of a base bucket)."""
        bucket = replace(self, start=start)
        untrack(bucket)
        return bucket

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

    def absorb(self, later: _Bucket) -> None:
        """Merge a bucket all of whose trades are at or after this one's."""
        self.last_time = later.last_time
        self.close = later.close
        if later.high > self.high:
            self.high = later.high
        if later.low < self.low:
            self.low = later.low
        self.volume += later.volume
        self.quote_volume += later.quote_volume
        self.trades += later.trades

    def merged(self, later: _Bucket, instrument: str, interval: str) -> Candle:
        """The open candle of this bucket and `later` (as `absorb` would make it, unchanged)."""
        return Candle(
            instrument,
            interval,
            self.start,
            self.open,
            self.high if self.high > later.high else later.high,
            self.low if self.low < later.low else later.low,
            later.close,
            self.volume + later.volume,
            self.quote_volume + later.quote_volume,
            self.trades + later.trades,
            False,
        )

    def candle(
        self, instrument: str, interval: str, closed: bool, start: int | None = None
    ) -> Candle:
        return Candle(
            instrument,
            interval,
            self.start if start is None else start,
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
    """Builds candles of several intervals for one instrument from its trades, incrementally.

    A trade updates one bucket: the smallest interval's (the *base*, 1m by default). The
    other intervals are folded from it: each keeps the trades of its base buckets that
    have closed (plus trades late for the base but not for it), and its open candle is
    that fold merged with the open base bucket. Every interval is a whole number of base
    intervals, so a base bucket lies inside one bucket of each. Prices, times, counts and
    lateness are what a bucket per interval gives; volumes are the same sums added in
    another order (they may differ in the last bits).
    """

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
        n = len(self.intervals)
        # The base: the smallest interval, whose length divides every other's (true of any
        # subset of INTERVALS; tests/domain/test_candles.py holds it).
        self._b = min(range(n), key=self._lengths.__getitem__)
        self._base_length = self._lengths[self._b]
        self._higher = tuple(k for k in range(n) if k != self._b)
        self._base: _Bucket | None = None
        # Per higher interval: its open bucket's trades that are not in the open base
        # bucket (None: none yet). Unused at the base's index.
        self._fold: list[_Bucket | None] = [None] * n
        # Higher intervals whose bucket for the open base bucket had closed already: the
        # base bucket's trades are late for them (rare: `close_due`, then a slow trade).
        self._late_for: tuple[int, ...] = ()
        # Start of the newest bucket already closed, per interval: anything at or before it is late.
        self._closed_through: list[int] = [-1] * n
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
        # Numbers, ids and buckets only: the aggregator and its containers are off the
        # collector's lists (domain/_untracked.py), as are the buckets when made
        # (`_Bucket.from_trade`). A container replaced later (the tuple `_late_for`)
        # holds atoms, which the collector untracks by itself.
        untrack_tree(self, (CandleAggregator,))

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

    def add(self, trade: Trade, updates: bool = True, dedupe: bool = True) -> list[Candle]:
        """Apply one trade; return the candles it closed and (with `updates`) the open
        candles it changed. Without, the caller reads them later with `open_candles`.
        Without `dedupe`, the trade's id is not checked (nor remembered): a caller that
        has deduplicated already, e.g. a composite fed by venue aggregators. Only the
        trade's time, price and size are read, never its instrument."""
        if dedupe and trade.trade_id and self._is_duplicate(trade.trade_id, trade.time):
            self.duplicates += 1
            return []
        base = self._base
        start = trade.time - trade.time % self._base_length
        if base is not None and start == base.start:  # the common case: one bucket to update
            base.add(trade)
            for k in self._late_for:
                self.late[self.intervals[k]] += 1
            return self.open_candles() if updates else []
        if start <= self._closed_through[self._b] or (base is not None and start < base.start):
            return self._add_late(trade, updates)
        return self._roll(trade, start, updates)

    def _roll(self, trade: Trade, start: int, updates: bool) -> list[Candle]:
        """A trade opens a new base bucket: close the old one (folding it into the higher
        intervals) and every higher bucket the trade has left."""
        closed: list[Candle | None] = [None] * len(self.intervals)
        if self._base is not None:
            closed[self._b] = self._close_base()
        late_for = []
        time = trade.time
        for k in self._higher:
            bucket_start = time - time % self._lengths[k]
            fold = self._fold[k]
            if fold is not None and fold.start != bucket_start:
                closed[k] = self._close_fold(k, fold)
            if bucket_start <= self._closed_through[k]:
                late_for.append(k)
                self.late[self.intervals[k]] += 1
        self._late_for = tuple(late_for)
        self._base = _Bucket.from_trade(start, trade)
        out = []
        for k, candle in enumerate(closed):  # per interval: its close, then its update
            if candle is not None:
                out.append(candle)
            if updates and (update := self._open_candle(k)) is not None:
                out.append(update)
        return out

    def _add_late(self, trade: Trade, updates: bool) -> list[Candle]:
        """A trade for a base bucket older than the open one: late for the base, applied
        to each higher interval whose open bucket it belongs to."""
        self.late[self.intervals[self._b]] += 1
        changed = []
        time = trade.time
        for k in self._higher:
            bucket_start = time - time % self._lengths[k]
            if bucket_start == self._open_start(k):
                fold = self._fold[k]
                if fold is None:
                    self._fold[k] = _Bucket.from_trade(bucket_start, trade)
                else:
                    fold.add(trade)
                changed.append(k)
            else:
                self.late[self.intervals[k]] += 1
        if not updates:
            return []
        return [c for k in changed if (c := self._open_candle(k)) is not None]

    def _open_start(self, k: int) -> int | None:
        """Start of higher interval `k`'s open bucket, if it has one."""
        fold = self._fold[k]
        if fold is not None:
            return fold.start
        base = self._base
        if base is None or k in self._late_for:
            return None
        return base.start - base.start % self._lengths[k]

    def _close_base(self) -> Candle:
        base = self._base
        assert base is not None
        self._closed_through[self._b] = base.start
        for k in self._higher:
            if k in self._late_for:
                continue
            fold = self._fold[k]
            if fold is None:
                self._fold[k] = base.starting_at(base.start - base.start % self._lengths[k])
            else:  # every trade of the fold is older than the base bucket's
                fold.absorb(base)
        self._base = None
        self._late_for = ()
        return base.candle(self.instrument, self.intervals[self._b], closed=True)

    def _close_fold(self, k: int, fold: _Bucket) -> Candle:
        self._closed_through[k] = fold.start
        self._fold[k] = None
        return fold.candle(self.instrument, self.intervals[k], closed=True)

    def _open_candle(self, k: int) -> Candle | None:
        base = self._base
        if k == self._b:
            return None if base is None else base.candle(self.instrument, self.intervals[k], False)
        fold = self._fold[k]
        if base is None or k in self._late_for:
            return None if fold is None else fold.candle(self.instrument, self.intervals[k], False)
        if fold is None:
            start = base.start - base.start % self._lengths[k]
            return base.candle(self.instrument, self.intervals[k], False, start)
        return fold.merged(base, self.instrument, self.intervals[k])

    def close_due(self, now_ms: int) -> list[Candle]:
        """Close every open candle whose interval ended at or before `now_ms`."""
        closed: list[Candle | None] = [None] * len(self.intervals)
        base = self._base
        if base is not None and base.start + self._base_length <= now_ms:
            closed[self._b] = self._close_base()
        # A higher bucket that has ended holds no open base bucket: it is all in its fold.
        for k in self._higher:
            fold = self._fold[k]
            if fold is not None and fold.start + self._lengths[k] <= now_ms:
                closed[k] = self._close_fold(k, fold)
        return [c for c in closed if c is not None]

    def open_candles(self) -> list[Candle]:
        """The candles still open, as they stand (closed=False)."""
        base = self._base
        if base is None or self._late_for:  # the rare shapes: one candle at a time
            return [
                c for k in range(len(self.intervals)) if (c := self._open_candle(k)) is not None
            ]
        # The usual one (the timer calls this for every changed aggregator): the base
        # bucket, and each higher interval's fold (if any) merged with it, in one loop.
        instrument, intervals, lengths = self.instrument, self.intervals, self._lengths
        out = []
        for k, fold in enumerate(self._fold):
            if k == self._b:
                out.append(base.candle(instrument, intervals[k], False))
            elif fold is None:
                start = base.start - base.start % lengths[k]
                out.append(base.candle(instrument, intervals[k], False, start))
            else:
                out.append(fold.merged(base, instrument, intervals[k]))
        return out


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
