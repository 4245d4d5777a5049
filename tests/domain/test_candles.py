"""Candle aggregation: tables of cases, and properties checked against a naive oracle."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from cryptopulse.domain._untracked import assert_untrackable
from cryptopulse.domain.candles import CandleAggregator, _Bucket, aggregate_trades, merge_candles
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle, Side, Trade
from gcwalk import tracked_below

MIN = 60_000
T0 = 1_700_000_040_000 - 1_700_000_040_000 % (5 * MIN)  # aligned to 5m (and 1m)
INST = "binance:BTC-USDT"


def make_trade(
    time: int = T0,
    price: float = 100.0,
    size: float = 1.0,
    trade_id: str = "1",
    side: Side = "buy",
    instrument: str = INST,
) -> Trade:
    return Trade(instrument, trade_id, price, size, side, time, time)


def numbered(trades: Sequence[Trade]) -> list[Trade]:
    """Give each trade a unique id (its position), keeping everything else."""
    return [replace(t, trade_id=str(i)) for i, t in enumerate(trades)]


def oracle(trades: Sequence[Trade], interval: str) -> list[Candle]:
    """Naive resample: group by aligned bucket; order inside a bucket by (time, arrival)."""
    length = INTERVALS[interval]
    groups: dict[int, list[tuple[int, int, Trade]]] = {}
    for arrival, t in enumerate(trades):
        groups.setdefault(t.time // length * length, []).append((t.time, arrival, t))
    out = []
    for start in sorted(groups):
        rows = [t for _, _, t in sorted(groups[start], key=lambda r: (r[0], r[1]))]
        out.append(
            Candle(
                rows[0].instrument,
                interval,
                start,
                rows[0].price,
                max(t.price for t in rows),
                min(t.price for t in rows),
                rows[-1].price,
                sum(t.size for t in rows),
                sum(t.price * t.size for t in rows),
                len(rows),
                True,
            )
        )
    return out


def assert_candles_equal(actual: Sequence[Candle], expected: Sequence[Candle]) -> None:
    """Exact on everything but the float sums, which depend on addition order."""
    assert [(c.open_time, c.interval) for c in actual] == [
        (c.open_time, c.interval) for c in expected
    ]
    for a, e in zip(actual, expected, strict=True):
        assert (a.instrument, a.open, a.high, a.low, a.close, a.trades, a.closed) == (
            e.instrument,
            e.open,
            e.high,
            e.low,
            e.close,
            e.trades,
            e.closed,
        )
        assert a.volume == pytest.approx(e.volume, rel=1e-9)
        assert a.quote_volume == pytest.approx(e.quote_volume, rel=1e-9)


def run_aggregator(agg: CandleAggregator, trades: Sequence[Trade]) -> dict[str, list[Candle]]:
    """Feed trades; return, per interval, every closed candle followed by the open one."""
    closed: dict[str, list[Candle]] = {i: [] for i in agg.intervals}
    for trade in trades:
        for candle in agg.add(trade):
            if candle.closed:
                closed[candle.interval].append(candle)
    for candle in agg.open_candles():
        closed[candle.interval].append(replace(candle, closed=True))
    return closed


# --- tables of cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trades", "expected"),
    [
        pytest.param(
            [make_trade(T0 + 1, 10, 1, "a")],
            [(T0, 10, 10, 10, 10, 1.0, 1)],
            id="one-trade",
        ),
        pytest.param(
            [make_trade(T0 + 5, 10, 1, "a"), make_trade(T0 + 9, 12, 2, "b")],
            [(T0, 10, 12, 10, 12, 3.0, 2)],
            id="in-order",
        ),
        pytest.param(
            [make_trade(T0 + 9, 12, 2, "b"), make_trade(T0 + 5, 10, 1, "a")],
            [(T0, 10, 12, 10, 12, 3.0, 2)],
            id="out-of-order-within-bucket",
        ),
        pytest.param(
            [make_trade(T0 + 5, 10, 1, "a"), make_trade(T0 + 5, 11, 1, "b")],
            [(T0, 10, 11, 10, 11, 2.0, 2)],
            id="same-time-ties-by-arrival",
        ),
        pytest.param(
            [make_trade(T0, 10, 1, "a"), make_trade(T0 + MIN - 1, 9, 1, "b")],
            [(T0, 10, 10, 9, 9, 2.0, 2)],
            id="bucket-edges-inclusive-exclusive",
        ),
        pytest.param(
            [make_trade(T0, 10, 1, "a"), make_trade(T0 + MIN, 11, 1, "b")],
            [(T0, 10, 10, 10, 10, 1.0, 1), (T0 + MIN, 11, 11, 11, 11, 1.0, 1)],
            id="next-bucket-starts-at-boundary",
        ),
        pytest.param(
            [make_trade(T0, 10, 1, "a"), make_trade(T0 + 3 * MIN, 11, 1, "b")],
            [(T0, 10, 10, 10, 10, 1.0, 1), (T0 + 3 * MIN, 11, 11, 11, 11, 1.0, 1)],
            id="empty-intervals-make-no-candle",
        ),
        pytest.param(
            [make_trade(T0, 10, 1, "a"), make_trade(T0 + 1, 50, 1, "a")],
            [(T0, 10, 10, 10, 10, 1.0, 1)],
            id="duplicate-id-ignored",
        ),
    ],
)
def test_aggregate_cases(
    trades: list[Trade], expected: list[tuple[int, float, float, float, float, float, int]]
) -> None:
    agg = CandleAggregator(INST, ["1m"])
    got = run_aggregator(agg, trades)["1m"]
    assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume, c.trades) for c in got] == (
        expected
    )
    batch = aggregate_trades(trades, "1m")
    assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume, c.trades) for c in batch] == (
        expected
    )


def test_add_returns_closed_then_open_candle() -> None:
    agg = CandleAggregator(INST, ["1m"])
    first = agg.add(make_trade(T0 + 1, 10, trade_id="a"))
    assert [(c.open_time, c.closed) for c in first] == [(T0, False)]
    second = agg.add(make_trade(T0 + MIN + 1, 11, trade_id="b"))
    assert [(c.open_time, c.closed) for c in second] == [(T0, True), (T0 + MIN, False)]


def test_late_trade_is_counted_not_applied() -> None:
    agg = CandleAggregator(INST, ["1m", "5m"])
    agg.add(make_trade(T0 + 10, 10, trade_id="a"))
    agg.add(make_trade(T0 + MIN + 10, 11, trade_id="b"))  # closes the first 1m bucket
    changed = agg.add(make_trade(T0 + 20, 99, trade_id="c"))  # late for 1m, not for 5m
    assert agg.late == {"1m": 1, "5m": 0}
    assert [(c.interval, c.high) for c in changed] == [("5m", 99)]
    one_minute = {c.interval: c for c in agg.open_candles()}["1m"]
    assert one_minute.open_time == T0 + MIN and one_minute.high == 11


def test_trade_after_close_due_for_the_closed_bucket_is_late() -> None:
    agg = CandleAggregator(INST, ["1m"])
    agg.add(make_trade(T0 + 10, trade_id="a"))
    assert agg.close_due(T0 + MIN)[0].closed
    assert agg.add(make_trade(T0 + 20, trade_id="b")) == []
    assert agg.late["1m"] == 1


@pytest.mark.parametrize(
    ("now", "closed_intervals"),
    [
        (T0 + MIN - 1, []),
        (T0 + MIN, ["1m"]),
        (T0 + 5 * MIN, ["1m", "5m"]),
    ],
)
def test_close_due_closes_by_time(now: int, closed_intervals: list[str]) -> None:
    agg = CandleAggregator(INST, ["1m", "5m"])
    agg.add(make_trade(T0 + 10, trade_id="a"))
    closed = agg.close_due(now)
    assert [c.interval for c in closed] == closed_intervals
    assert all(c.closed for c in closed)
    assert {c.interval for c in agg.open_candles()} == {"1m", "5m"} - set(closed_intervals)
    assert agg.close_due(now) == []  # closing is idempotent


def test_dedupe_window_forgets_old_ids() -> None:
    agg = CandleAggregator(INST, ["1m"], dedupe_window=2)
    for i, trade_id in enumerate(["a", "b", "c", "a"]):
        agg.add(make_trade(T0 + i, trade_id=trade_id))
    assert agg.duplicates == 0  # "a" had left the window
    agg.add(make_trade(T0 + 9, trade_id="c"))
    assert agg.duplicates == 1


def test_dedupe_forgets_ids_older_than_its_time_window() -> None:
    agg = CandleAggregator(INST, ["1d"], dedupe_ms=MIN, dedupe_keep=2)
    for i in range(5):  # ids 0..4, 20 s apart
        agg.add(make_trade(T0 + i * 20_000, trade_id=str(i)))
    # Newest is 80 s: ids of trades more than 60 s older (0) are forgotten, the rest kept.
    agg.add(make_trade(T0 + 1, trade_id="0"))
    agg.add(make_trade(T0 + 2, trade_id="1"))
    assert agg.duplicates == 1
    assert agg.open_candles()[0].trades == 6


def test_dedupe_keeps_the_last_ids_of_a_slow_instrument() -> None:
    """A reconnect snapshot may resend trades hours old: the last `dedupe_keep` ids stay."""
    agg = CandleAggregator(INST, ["1d"], dedupe_ms=MIN, dedupe_keep=3)
    for i in range(4):  # an hour apart
        agg.add(make_trade(T0 + i * 60 * MIN, trade_id=str(i)))
    for i in range(1, 4):  # the snapshot: the last three again
        agg.add(make_trade(T0 + i * 60 * MIN, trade_id=str(i)))
    assert agg.duplicates == 3
    agg.add(make_trade(T0, trade_id="0"))  # the fourth id back was forgotten
    assert agg.duplicates == 3


def test_dedupe_memory_shrinks_after_a_burst() -> None:
    agg = CandleAggregator(INST, ["1d"], dedupe_ms=MIN, dedupe_keep=10, dedupe_window=1_000)
    for i in range(1_000):  # a burst: 1,000 trades in one second
        agg.add(make_trade(T0 + i, trade_id=f"burst-{i}"))
    assert len(agg._seen) == 1_000
    agg.add(make_trade(T0 + 2 * MIN, trade_id="quiet"))
    assert len(agg._seen) == 10  # the burst's ids are outside the window now
    agg.add(make_trade(T0 + 2 * MIN, trade_id="burst-999"))
    assert agg.duplicates == 1


def test_empty_trade_id_is_never_a_duplicate() -> None:
    agg = CandleAggregator(INST, ["1m"])
    agg.add(make_trade(T0, trade_id=""))
    agg.add(make_trade(T0 + 1, trade_id=""))
    assert agg.duplicates == 0
    assert agg.open_candles()[0].trades == 2


def test_aggregate_trades_keeps_instruments_apart() -> None:
    trades = [
        make_trade(T0, 10, trade_id="1", instrument="a:X-Y"),
        make_trade(T0 + 1, 20, trade_id="1", instrument="b:X-Y"),
    ]
    got = aggregate_trades(trades, "1m")
    assert [(c.instrument, c.close) for c in got] == [("a:X-Y", 10), ("b:X-Y", 20)]


def test_aggregate_trades_ignores_duplicate_ids() -> None:
    trades = [make_trade(T0, 10, 1, "a"), make_trade(T0 + 1, 12, 5, "a")]
    (candle,) = aggregate_trades(trades, "1m")
    assert (candle.close, candle.volume, candle.trades) == (10, 1, 1)


def test_merge_candles_table() -> None:
    minute = [
        Candle(INST, "1m", T0, 10, 12, 9, 11, 1, 10, 2, True),
        Candle(INST, "1m", T0 + 2 * MIN, 11, 15, 11, 14, 2, 28, 3, True),
        Candle(INST, "1m", T0 + 5 * MIN, 14, 14, 13, 13, 1, 13, 1, False),
    ]
    got = merge_candles(minute, "5m")
    assert got == [
        Candle(INST, "5m", T0, 10, 15, 9, 14, 3, 38, 5, True),
        Candle(INST, "5m", T0 + 5 * MIN, 14, 14, 13, 13, 1, 13, 1, False),
    ]


def test_merge_candles_of_nothing_is_nothing() -> None:
    assert merge_candles([], "1h") == []


# --- properties ------------------------------------------------------------------------

prices = st.floats(min_value=0.01, max_value=100_000, allow_nan=False, allow_infinity=False)
sizes = st.floats(min_value=1e-6, max_value=1_000, allow_nan=False, allow_infinity=False)
# Times over ~12 minutes with many collisions, so buckets hold several trades and ties happen.
times = st.integers(min_value=T0, max_value=T0 + 12 * MIN).map(lambda t: t - t % 997)
trade_lists = st.lists(
    st.builds(make_trade, time=times, price=prices, size=sizes), min_size=1, max_size=60
).map(numbered)


@given(trade_lists)
def test_aggregate_trades_matches_oracle(trades: list[Trade]) -> None:
    for interval in ("1m", "5m"):
        assert_candles_equal(aggregate_trades(trades, interval), oracle(trades, interval))


@given(trade_lists)
def test_candle_invariants(trades: list[Trade]) -> None:
    for candle in aggregate_trades(trades, "1m"):
        inside = [t for t in trades if candle.open_time <= t.time < candle.open_time + MIN]
        assert candle.high == max(t.price for t in inside)
        assert candle.low == min(t.price for t in inside)
        assert candle.low <= min(candle.open, candle.close) <= candle.high
        assert candle.trades == len(inside)
        assert candle.volume == pytest.approx(sum(t.size for t in inside))


@given(trade_lists)
def test_incremental_in_time_order_equals_batch(trades: list[Trade]) -> None:
    in_order = sorted(trades, key=lambda t: t.time)
    got = run_aggregator(CandleAggregator(INST, ["1m", "5m", "1h"]), in_order)
    for interval, candles in got.items():
        assert_candles_equal(candles, aggregate_trades(trades, interval))


@given(trade_lists)
def test_incremental_any_order_drops_only_late_trades(trades: list[Trade]) -> None:
    agg = CandleAggregator(INST, ["1m", "5m"])
    got = run_aggregator(agg, trades)
    for interval in ("1m", "5m"):
        length = INTERVALS[interval]
        newest = -1
        on_time = []
        for t in trades:  # a trade is late iff a newer bucket was already opened
            bucket = t.time - t.time % length
            if bucket >= newest:
                on_time.append(t)
                newest = bucket
        assert agg.late[interval] == len(trades) - len(on_time)
        assert_candles_equal(got[interval], oracle(on_time, interval))


@given(trade_lists)
def test_merged_minutes_equal_direct_five_minutes(trades: list[Trade]) -> None:
    merged = merge_candles(aggregate_trades(trades, "1m"), "5m")
    assert_candles_equal(merged, aggregate_trades(trades, "5m"))


@given(trade_lists)
def test_replayed_duplicates_change_nothing(trades: list[Trade]) -> None:
    in_order = sorted(trades, key=lambda t: t.time)
    agg = CandleAggregator(INST, ["1m"])
    once = run_aggregator(agg, in_order)["1m"]
    again = CandleAggregator(INST, ["1m"])
    resent = [x for t in in_order for x in (t, replace(t, price=t.price * 2))]  # same id
    assert_candles_equal(run_aggregator(again, resent)["1m"], once)
    assert again.duplicates == len(in_order)


@settings(max_examples=50)
@given(trade_lists, st.integers(min_value=T0, max_value=T0 + 20 * MIN))
def test_close_due_leaves_only_unfinished_buckets_open(trades: list[Trade], now: int) -> None:
    agg = CandleAggregator(INST, ["1m", "5m"])
    for trade in sorted(trades, key=lambda t: t.time):
        agg.add(trade)
    closed = agg.close_due(now)
    assert all(c.open_time + INTERVALS[c.interval] <= now for c in closed)
    assert all(c.open_time + INTERVALS[c.interval] > now for c in agg.open_candles())


class BucketPerInterval:
    """The reference: one bucket per interval, each updated by every trade (what the
    aggregator did before it folded the higher intervals from the smallest)."""

    def __init__(self, intervals: Sequence[str]) -> None:
        self.intervals = intervals
        self.open: dict[str, list[Trade]] = {}  # interval -> the open bucket's trades
        self.closed_through = dict.fromkeys(intervals, -1)
        self.late = dict.fromkeys(intervals, 0)

    def _candle(self, interval: str, trades: list[Trade], closed: bool) -> Candle:
        (candle,) = oracle(trades, interval)
        return replace(candle, closed=closed)

    def add(self, trade: Trade, updates: bool) -> list[Candle]:
        out = []
        for interval in self.intervals:
            start = trade.time - trade.time % INTERVALS[interval]
            bucket = self.open.get(interval)
            bucket_start = None if bucket is None else bucket[0].time // INTERVALS[interval]
            if bucket_start is not None:
                bucket_start *= INTERVALS[interval]
            if bucket is not None and start == bucket_start:
                bucket.append(trade)
            elif start <= self.closed_through[interval] or (
                bucket_start is not None and start < bucket_start
            ):
                self.late[interval] += 1
                continue
            else:
                if bucket is not None and bucket_start is not None:
                    out.append(self._candle(interval, bucket, True))
                    self.closed_through[interval] = bucket_start
                self.open[interval] = [trade]
            if updates:
                out.append(self._candle(interval, self.open[interval], False))
        return out

    def close_due(self, now: int) -> list[Candle]:
        out = []
        for interval in self.intervals:
            bucket = self.open.get(interval)
            if bucket is None:
                continue
            start = bucket[0].time - bucket[0].time % INTERVALS[interval]
            if start + INTERVALS[interval] <= now:
                out.append(self._candle(interval, bucket, True))
                self.closed_through[interval] = start
                del self.open[interval]
        return out

    def open_candles(self) -> list[Candle]:
        return [self._candle(i, self.open[i], False) for i in self.intervals if i in self.open]


# A step: a trade (with or without the open candles it changed) or a `close_due(now)`.
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"),
            st.builds(make_trade, time=times, price=prices, size=sizes),
            st.booleans(),
        ),
        st.tuples(
            st.just("close_due"), st.integers(min_value=T0, max_value=T0 + 13 * MIN), st.just(False)
        ),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300)
@given(steps, st.sampled_from([("1m", "5m"), ("1m", "5m", "15m", "1h"), ("5m", "1m"), ("1m",)]))
def test_folded_intervals_equal_a_bucket_per_interval(
    script: list[tuple[str, Trade | int, bool]], intervals: tuple[str, ...]
) -> None:
    """Any order of trades (late ones included) and `close_due` calls: every call returns
    what a bucket per interval returns, and lateness is counted the same."""
    agg = CandleAggregator(INST, intervals)
    reference = BucketPerInterval(intervals)
    for n, (kind, arg, updates) in enumerate(script):
        if kind == "trade":
            assert isinstance(arg, Trade)
            trade = replace(arg, trade_id=str(n))
            assert_candles_equal(agg.add(trade, updates), reference.add(trade, updates))
        else:
            assert isinstance(arg, int)
            assert_candles_equal(agg.close_due(arg), reference.close_due(arg))
        assert agg.late == reference.late
    assert_candles_equal(agg.open_candles(), reference.open_candles())


def test_without_dedupe_ids_are_neither_checked_nor_remembered() -> None:
    """A composite's aggregator takes venue trades as they are: the candles are its own
    instrument's, and a repeated id counts (the venue's aggregator dedupes)."""
    agg = CandleAggregator("BTC-USDT", ["1m"])
    agg.add(make_trade(T0, price=10, trade_id="a"), dedupe=False)
    (candle,) = agg.add(make_trade(T0 + 1, price=11, trade_id="a"), dedupe=False)
    assert (candle.instrument, candle.trades, candle.close) == ("BTC-USDT", 2, 11)
    assert agg.duplicates == 0 and not agg._seen


def test_every_interval_divides_every_longer_one() -> None:
    """What folding from the smallest chosen interval relies on (`CandleAggregator`): an
    interval added to INTERVALS that breaks it (say 7m) fails here, not in production."""
    lengths = sorted(INTERVALS.values())
    assert all(longer % shorter == 0 for i, shorter in enumerate(lengths) for longer in lengths[i:])


def test_the_garbage_collector_does_not_walk_an_aggregator() -> None:
    """Two aggregators per traded instrument live as long as the process: their buckets,
    dedupe set and deques are off the collector's lists (domain/_untracked.py), and stay
    so as buckets roll, fold, take late trades and close."""
    agg = CandleAggregator(INST)
    trades = [make_trade(T0 + i * 20_000, 100.0 + i % 7, trade_id=str(i)) for i in range(40)]
    trades.insert(30, make_trade(T0 + 5 * MIN + 1, 90.0, trade_id="late"))  # late for 1m only
    closed = [c for t in trades for c in agg.add(t) if c.closed]
    closed += agg.close_due(T0 + 15 * MIN)
    assert [c.interval for c in closed].count("1m") == 14
    assert agg.add(make_trade(T0 + 20 * MIN, trade_id="after"))  # a new base bucket
    assert any(fold is not None for fold in agg._fold)  # buckets inside the fold list too
    gc.collect()
    assert not gc.is_tracked(agg)
    assert tracked_below(agg) == []
    # What makes untracking them safe: numbers, ids and buckets, nothing else.
    assert_untrackable(agg, (CandleAggregator, _Bucket))
