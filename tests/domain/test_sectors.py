"""Sector indices, performance, breadth, ranks and correlation breakdowns."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from cryptopulse.domain.correlation import Series, log_returns
from cryptopulse.domain.sectors import (
    IndexSeries,
    SectorParams,
    breadth,
    compute_sectors,
    ema,
    leave_one_out_correlations,
    performance,
    rs_ranks,
    sector_index,
)

STEP = 300_000
HOUR = 3_600_000


def make_series(closes: list[float], times: list[int] | None = None) -> Series:
    times = times or [i * STEP for i in range(len(closes))]
    return Series(tuple(times), tuple(closes), tuple([1.0] * len(closes)))


def walk(seed: int, n: int, scale: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= math.exp(rng.gauss(0, scale))
        out.append(price)
    return out


def test_equal_and_cap_weighted_index_by_hand() -> None:
    members = {"A": make_series([10.0, 11.0, 12.1]), "B": make_series([2.0, 2.0, 1.0])}
    index = sector_index(members, {"A": 1.0, "B": 15.0})
    assert index.times == [0, STEP, 2 * STEP]
    # step 1: A +10 %, B 0 %; step 2: A +10 %, B -50 %
    assert index.equal == pytest.approx([100.0, 105.0, 105.0 * (1 + (0.1 - 0.5) / 2)])
    # weights: previous close x supply = A 10 | 11, B 30 | 30
    w1 = (10 * 0.1 + 30 * 0.0) / 40
    w2 = (11 * 0.1 + 30 * -0.5) / 41
    assert index.cap == pytest.approx([100.0, 100 * (1 + w1), 100 * (1 + w1) * (1 + w2)])


def test_a_member_gap_carries_its_last_close_and_late_joiners_enter_later() -> None:
    members = {
        "A": make_series([10.0, 20.0], [0, 2 * STEP]),  # no candle at STEP
        "B": make_series([5.0, 5.0, 5.0], [0, STEP, 2 * STEP]),
        "C": make_series([7.0, 14.0], [STEP, 2 * STEP]),  # first close at STEP
    }
    index = sector_index(members, {})
    assert index.cap is None  # no supplies at all
    assert index.equal == pytest.approx([100.0, 100.0, 100.0 * (1 + (1.0 + 0.0 + 1.0) / 3)])


def test_performance_needs_the_whole_period() -> None:
    index = IndexSeries([0, HOUR, 2 * HOUR], [100.0, 110.0, 121.0], None)
    assert performance(index, 2 * HOUR, HOUR) == (pytest.approx(0.1), None)
    assert performance(index, 2 * HOUR, 2 * HOUR)[0] == pytest.approx(0.21)
    assert performance(index, 2 * HOUR, 3 * HOUR) == (None, None)


def test_ema_matches_pandas_and_breadth_counts_members_above_it() -> None:
    closes = walk(1, 80)
    expected = pd.Series(closes).ewm(span=20, adjust=False).mean().iloc[-1]
    assert ema(closes, 20) == pytest.approx(expected, rel=1e-12)
    rising = [float(i) for i in range(1, 30)]
    members = {
        "UP": make_series(rising),
        "DOWN": make_series(rising[::-1]),
        "SHORT": make_series([1.0, 2.0]),  # fewer candles than the period: left out
    }
    assert breadth(members, 20) == 0.5
    assert breadth({"S": make_series([1.0])}, 20) is None


def test_ranks_put_the_strongest_first() -> None:
    assert rs_ranks({"a": 0.1, "b": -0.2, "c": 0.3, "d": None}) == {"c": 1, "a": 2, "b": 3}


def test_leave_one_out_correlation_compares_with_the_other_members() -> None:
    base = walk(2, 100)
    members = {
        "A": make_series(base),
        "B": make_series([2 * c for c in base]),
        "C": make_series(walk(3, 100)),
    }
    returns = {k: log_returns(v, STEP) for k, v in members.items()}
    two = leave_one_out_correlations({"A": returns["A"], "B": returns["B"]}, -1, 10**12)
    assert two["A"] == pytest.approx(1.0) and two["B"] == pytest.approx(1.0)
    assert leave_one_out_correlations({"A": returns["A"]}, -1, 10**12) == {"A": None}


def test_compute_sectors_ranks_rotation_and_breakdowns() -> None:
    n = 24 * 12 * 2 + 1  # two days of 5m candles
    base = walk(4, n)
    universe = {
        "A": make_series(base),
        "B": make_series([c * (1 + 0.001 * math.sin(i)) for i, c in enumerate(base)]),
        "LONER": make_series(walk(5, n)),  # unrelated to A and B
        "X": make_series([100.0 * 1.0005**i for i in range(n)]),  # steady riser
    }
    sectors = {"pack": ["A", "B", "LONER"], "solo": ["X"], "empty": ["NOPE"]}
    params = SectorParams(interval_ms=STEP, breakdown_threshold=0.3)
    as_of = (n - 1) * STEP
    out = compute_sectors(sectors, universe, {"A": 1.0}, as_of, params)
    assert set(out) == {"pack", "solo"}
    pack, solo = out["pack"], out["solo"]
    assert pack.members == ["A", "B", "LONER"]
    assert pack.breakdowns == ["LONER"]
    assert pack.correlations["A"]["B"] == pytest.approx(1.0, abs=0.05)
    assert solo.performance["24h"][0] == pytest.approx(1.0005**288 - 1)
    assert solo.performance["30d"] == (None, None)
    day_ago = performance(pack.index, as_of, 24 * HOUR)[0]
    assert day_ago is not None
    assert {pack.rank, solo.rank} == {1, 2}
    solo_24h = solo.performance["24h"][0]
    assert solo_24h is not None
    assert solo.rank == (1 if solo_24h > day_ago else 2)
    assert pack.rank_change_24h is not None


def test_members_without_candles_up_to_as_of_are_left_out() -> None:
    universe = {"OLD": make_series([1.0, 2.0]), "NEW": make_series([5.0], [10 * STEP])}
    out = compute_sectors({"s": ["OLD", "NEW"], "late": ["NEW"]}, universe, {}, STEP)
    assert set(out) == {"s"} and out["s"].members == ["OLD"]
