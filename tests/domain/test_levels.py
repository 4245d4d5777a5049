"""Support and resistance: swing points, ATR-scaled clustering, touches and strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptopulse.domain.levels import find_levels, swing_points
from cryptopulse.domain.models import Candle
from cryptopulse.importer import read_candles

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STEP = 300_000


def make_candle(high: float, low: float, close: float | None = None, time: int = 0) -> Candle:
    c = (high + low) / 2 if close is None else close
    return Candle("test:BTC-USD", "5m", time, c, high, low, c, 1.0, c, 1, True)


def zigzag(tops: list[float], bottoms: list[float], leg: int = 4) -> list[Candle]:
    """Prices that walk from each bottom up to the next top and back, `leg` candles a leg."""
    prices: list[float] = []
    for bottom, top in zip(bottoms, tops, strict=True):
        prices += [bottom + (top - bottom) * k / leg for k in range(leg)]
        prices += [top - (top - bottom) * k / leg for k in range(leg)]
    prices.append(bottoms[-1])
    return [make_candle(p + 0.5, p - 0.5, p, i * STEP) for i, p in enumerate(prices)]


def test_swing_points_find_each_turn() -> None:
    candles = zigzag([110.0, 111.0], [100.0, 100.2])
    points = swing_points(candles, swing=3)
    assert points == [(110.5, 4), (99.7, 8), (111.5, 12)]


def test_flat_top_counts_once() -> None:
    highs = [1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 0.5]
    candles = [make_candle(h, h - 0.1, time=i * STEP) for i, h in enumerate(highs)]
    assert [i for _, i in swing_points(candles, swing=2) if candles[i].high == 3.0] == [3]


def test_range_market_gives_one_support_and_one_resistance() -> None:
    candles = zigzag([110.0, 110.3, 109.8, 110.1], [100.0, 99.8, 100.3, 100.1])
    candles.append(make_candle(105.5, 104.5, 105.0, len(candles) * STEP))
    levels = find_levels(candles, atr_period=5, swing=2, tolerance_atr=0.5)
    # Four tops; the first and last bottoms lack two candles on one side, so three.
    assert [(lv.kind, lv.touches) for lv in levels] == [("resistance", 4), ("support", 3)]
    resistance, support = levels
    assert resistance.price == pytest.approx((110.5 + 110.8 + 110.3 + 110.6) / 4)
    assert support.price == pytest.approx((99.3 + 99.8 + 99.6) / 3)
    assert support.strength == pytest.approx(0.75)  # touches weighed by recency
    assert max(lv.strength for lv in levels) == 1.0
    assert all(lv.first_time < lv.last_time for lv in levels)


def test_a_tight_tolerance_splits_levels() -> None:
    candles = zigzag([110.0, 110.3, 109.8, 110.1], [100.0, 99.8, 100.3, 100.1])
    assert len(find_levels(candles, swing=2, tolerance_atr=0.0)) > 2
    assert len(find_levels(candles, swing=2, tolerance_atr=0.0, max_levels=3)) == 3


def test_recent_touches_weigh_more() -> None:
    old = zigzag([120.0, 120.0], [100.0, 100.0])
    recent = [
        make_candle(c.high - 40, c.low - 40, c.close - 40, (len(old) + i) * STEP)
        for i, c in enumerate(zigzag([120.0, 120.0], [100.0, 100.0]))
    ]
    levels = find_levels(old + recent, swing=2, tolerance_atr=0.5)
    strongest = levels[0]
    assert strongest.price < 90  # the recent range, touched as often as the old one
    assert [lv.strength for lv in levels] == sorted((lv.strength for lv in levels), reverse=True)


def test_too_little_data_and_bad_arguments() -> None:
    assert find_levels([make_candle(1.0, 0.5)] * 5) == []
    with pytest.raises(ValueError):
        find_levels([], swing=0)
    with pytest.raises(ValueError):
        find_levels([], tolerance_atr=-1.0)


@pytest.mark.parametrize("name", ["ETH-BTC", "XMR-BTC"])
def test_levels_on_real_candles(name: str) -> None:
    path = DATA / "candles" / f"{name}-5m.csv.gz"
    candles = list(read_candles(path, f"binance:{name}", "5m"))[-1000:]
    levels = find_levels(candles)
    assert 1 <= len(levels) <= 10
    low, high = min(c.low for c in candles), max(c.high for c in candles)
    close = candles[-1].close
    for lv in levels:
        assert low <= lv.price <= high
        assert lv.touches >= 1 and 0.0 < lv.strength <= 1.0
        assert lv.kind == ("support" if lv.price <= close else "resistance")
    assert levels[0].strength == 1.0
