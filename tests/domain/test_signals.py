"""Signals: each rule from a table of cases, their priority, the engine's state, and the
performance of following them, checked by hand and against a pandas oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptopulse.domain.indicators import NAMES, IndicatorSet, IndicatorValues
from cryptopulse.domain.models import Candle
from cryptopulse.domain.signals import (
    Signal,
    SignalEngine,
    SignalRules,
    evaluate_signal,
    signal_performance,
)
from cryptopulse.importer import read_candles

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STEP = 300_000


def make_candle(close: float, time: int = 0) -> Candle:
    return Candle("test:BTC-USD", "5m", time, close, close, close, close, 1.0, close, 1, True)


def make_values(**given: float) -> IndicatorValues:
    values: IndicatorValues = dict.fromkeys(NAMES)
    values.update(given)
    return values


TREND_UP = {"ema_fast": 101.0, "ema_slow": 100.0, "adx": 30.0, "plus_di": 25.0, "minus_di": 10.0}
TREND_DOWN = {"ema_fast": 99.0, "ema_slow": 100.0, "adx": 60.0, "plus_di": 10.0, "minus_di": 25.0}
MOMENTUM_UP = {"rsi": 65.0, "macd": 0.5, "macd_signal": 0.2}
MOMENTUM_DOWN = {"rsi": 20.0, "macd": -0.5, "macd_signal": -0.2}


@pytest.mark.parametrize(
    ("close", "values", "channel", "expected"),
    [
        (105.0, {"atr": 2.0}, (104.0, 90.0), ("bullish", 0.75, "breakout")),
        (85.0, {"atr": 2.0}, (104.0, 90.0), ("bearish", 1.0, "breakout")),
        (105.0, {}, (104.0, 90.0), ("bullish", 0.5, "breakout")),  # no ATR yet
        (100.0, {"atr": 2.0}, (104.0, 90.0), ("neutral", 0.0, "none")),  # inside the channel
        (100.0, TREND_UP, (None, None), ("bullish", 0.6, "trend")),
        (100.0, TREND_DOWN, (None, None), ("bearish", 1.0, "trend")),
        (100.0, TREND_UP | {"adx": 19.9}, (None, None), ("neutral", 0.0, "none")),  # no trend
        (100.0, TREND_UP | {"plus_di": 5.0}, (None, None), ("neutral", 0.0, "none")),  # DI
        (100.0, MOMENTUM_UP, (None, None), ("bullish", 0.5, "momentum")),
        (100.0, MOMENTUM_DOWN, (None, None), ("bearish", 1.0, "momentum")),
        (100.0, MOMENTUM_UP | {"rsi": 45.0}, (None, None), ("neutral", 0.0, "none")),
        (100.0, TREND_UP | MOMENTUM_DOWN, (None, None), ("bullish", 0.6, "trend")),  # priority
        (105.0, TREND_DOWN, (104.0, 90.0), ("bullish", 0.5, "breakout")),  # priority
        (100.0, {}, (None, None), ("neutral", 0.0, "none")),  # warm-up: nothing known
    ],
)
def test_rules(
    close: float,
    values: dict[str, float],
    channel: tuple[float | None, float | None],
    expected: tuple[str, float, str],
) -> None:
    signal = evaluate_signal(make_candle(close, 7 * STEP), make_values(**values), channel)
    assert (signal.state, signal.strength, signal.rule) == pytest.approx(expected)
    assert signal.time == 7 * STEP


def test_thresholds_are_settable() -> None:
    values = make_values(**TREND_UP)
    strict = SignalRules(adx_trend=40.0)
    assert evaluate_signal(make_candle(100.0), values, rules=strict).rule == "none"


def test_engine_compares_with_the_channel_before_the_candle() -> None:
    engine = SignalEngine()
    first = engine.update(make_candle(100.0), make_values(donchian_upper=104.0, donchian_lower=90))
    assert first.state == "neutral" and engine.last == first
    breakout = make_candle(105.0, STEP)
    values = make_values(donchian_upper=105.0, donchian_lower=90.0)  # includes this candle
    assert engine.peek(breakout, values).rule == "breakout"
    assert engine.peek(breakout, values).rule == "breakout"  # peek changed nothing
    assert engine.update(breakout, values).rule == "breakout"
    # The channel now includes 105: the same close is no longer a breakout.
    assert engine.update(make_candle(105.0, 2 * STEP), values).rule == "none"


def test_signals_on_real_candles_are_well_formed() -> None:
    candles = list(read_candles(DATA / "candles" / "ETH-BTC-5m.csv.gz", "binance:ETH-BTC", "5m"))
    indicators, engine = IndicatorSet(), SignalEngine()
    signals = [engine.update(c, indicators.update(c)) for c in candles]
    rules = {s.rule for s in signals}
    assert rules == {"breakout", "trend", "momentum", "none"}
    for s in signals:
        assert 0.0 <= s.strength <= 1.0
        assert (s.state == "neutral") == (s.rule == "none")
    perf = signal_performance(candles, signals)
    assert perf.signals > 100
    assert perf.window_start == candles[0].open_time and perf.window_end == candles[-1].open_time
    assert perf.strategy_return == pytest.approx(oracle_strategy_return(candles, signals))
    assert perf.hold_return == pytest.approx(candles[-1].close / candles[0].close - 1)
    # A changes-only list (what the bus publishes) gives the same performance.
    changes = [s for i, s in enumerate(signals) if i == 0 or s.state != signals[i - 1].state]
    assert signal_performance(candles, changes) == perf


def oracle_strategy_return(candles: list[Candle], signals: list[Signal]) -> float:
    """pandas: position = the previous candle's signal, forward-filled; compound returns."""
    close = pd.Series([c.close for c in candles], index=[c.open_time for c in candles])
    state = pd.Series({s.time: s.state for s in signals}).reindex(close.index).ffill()
    position = state.map({"bullish": 1, "bearish": -1, "neutral": 0}).fillna(0).shift(1)
    growth = (1 + position.fillna(0) * close.pct_change().fillna(0)).prod()
    return float(np.asarray(growth) - 1)


def sig(state: str, i: int) -> Signal:
    return Signal(state, 1.0, "test", i * STEP)  # type: ignore[arg-type]


def test_performance_by_hand() -> None:
    candles = [make_candle(c, i * STEP) for i, c in enumerate([100.0, 110.0, 99.0, 99.0, 90.0])]
    # Long from candle 1 (+10 %, −10 %), flat, short over the last (+10 % for a short).
    perf = signal_performance(
        candles, [sig("bullish", 0), sig("neutral", 2), sig("bearish", 3), sig("bullish", 99)]
    )
    assert perf.strategy_return == pytest.approx(1.1 * 0.9 * (1 + 9 / 99) - 1)
    assert perf.hold_return == pytest.approx(-0.1)
    assert perf.signals == 2
    assert perf.hit_rate == 0.5  # the long lost 1 %, the short made 9 %


def test_performance_edge_cases() -> None:
    candles = [make_candle(100.0 + i, i * STEP) for i in range(3)]
    idle = signal_performance(candles, [])
    assert (idle.strategy_return, idle.signals, idle.hit_rate) == (0.0, 0, None)
    # A position opened on the last candle is counted but not judged.
    last = signal_performance(candles, [sig("bullish", 2)])
    assert (last.signals, last.hit_rate) == (1, None)
    with pytest.raises(ValueError):
        signal_performance([], [])
