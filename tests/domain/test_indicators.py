"""Indicators against independent oracles on every real candle file, and their own rules.

TA-Lib is the oracle for everything it has; VWAP and rolling volatility (which TA-Lib
lacks) are checked against pandas. Values must agree within 1e-9 relative after the
warm-up; see docs/indicators.md for the tolerance near zero.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse.domain._indicators_ma import Ema
from cryptopulse.domain._untracked import assert_untrackable, untrack_tree
from cryptopulse.domain.indicators import (
    INDICATOR_STATE,
    NAMES,
    IndicatorParams,
    IndicatorSet,
    IndicatorValues,
    compute_history,
)
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle
from cryptopulse.importer import read_candles
from gcwalk import collector_visits, tracked_below

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FILES = sorted((DATA / "candles").glob("*-5m.csv.gz"))
PARAMS = {
    "default": IndicatorParams(),
    "short": IndicatorParams(
        sma=5,
        ema_fast=5,
        ema_slow=10,
        wma=7,
        rsi=7,
        macd=(5, 13, 4),
        bb=(10, 1.5),
        atr=7,
        adx=7,
        stoch=(5, 3, 2),
        donchian=10,
        volatility=10,
        vwap_session="4h",
    ),
    "long": IndicatorParams(
        sma=50,
        ema_fast=20,
        ema_slow=50,
        wma=30,
        rsi=21,
        macd=(19, 39, 9),
        bb=(50, 2.5),
        atr=21,
        adx=21,
        stoch=(21, 5, 5),
        donchian=55,
        volatility=60,
        vwap_session="1h",
    ),
}
TOLERANCE = 1e-9
OSCILLATORS = {"rsi", "adx", "plus_di", "minus_di", "stoch_k", "stoch_d"}


def make_candle(
    close: float, high: float | None = None, low: float | None = None, time: int = 0, **kw: float
) -> Candle:
    high = close if high is None else high
    low = close if low is None else low
    return Candle(
        "test:BTC-USD",
        "5m",
        time,
        kw.get("open", close),
        high,
        low,
        close,
        kw.get("volume", 1.0),
        0.0,
        1,
        True,
    )


@cache
def load(path: Path) -> tuple[Candle, ...]:
    return tuple(read_candles(path, "binance:" + path.name.split("-5m")[0], "5m"))


def columns(values: list[IndicatorValues]) -> dict[str, np.ndarray]:
    return {
        name: np.array([math.nan if v[name] is None else v[name] for v in values]) for name in NAMES
    }


def talib_oracle(candles: tuple[Candle, ...], p: IndicatorParams) -> dict[str, np.ndarray]:
    h, lo, c, v = (
        np.array([getattr(x, f) for x in candles]) for f in ("high", "low", "close", "volume")
    )
    macd, signal, hist = talib.MACD(c, *p.macd)
    upper, middle, lower = talib.BBANDS(c, p.bb[0], p.bb[1], p.bb[1], 0)
    k, d = talib.STOCH(h, lo, c, p.stoch[0], p.stoch[1], 0, p.stoch[2], 0)
    dc_upper, dc_lower = talib.MAX(h, p.donchian), talib.MIN(lo, p.donchian)
    return {
        "sma": talib.SMA(c, p.sma),
        "ema_fast": talib.EMA(c, p.ema_fast),
        "ema_slow": talib.EMA(c, p.ema_slow),
        "wma": talib.WMA(c, p.wma),
        "rsi": talib.RSI(c, p.rsi),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr": talib.ATR(h, lo, c, p.atr),
        "adx": talib.ADX(h, lo, c, p.adx),
        "plus_di": talib.PLUS_DI(h, lo, c, p.adx),
        "minus_di": talib.MINUS_DI(h, lo, c, p.adx),
        "stoch_k": k,
        "stoch_d": d,
        "obv": talib.OBV(c, v),
        "donchian_upper": dc_upper,
        "donchian_middle": (dc_upper + dc_lower) / 2,
        "donchian_lower": dc_lower,
    }


def numpy_pandas_oracle(candles: tuple[Candle, ...], p: IndicatorParams) -> dict[str, np.ndarray]:
    """VWAP (pandas group-by cumsums) and volatility (numpy two-pass std of each window).

    pandas' rolling std is a running algorithm that is off by up to 6e-6 relative in the
    quietest windows of these files, so the volatility oracle is the textbook two-pass one.
    """
    df = pd.DataFrame([(x.open_time, x.high, x.low, x.close, x.volume) for x in candles])
    df.columns = ["t", "h", "l", "c", "v"]
    session = df["t"] // INTERVALS[p.vwap_session]
    pv = ((df["h"] + df["l"] + df["c"]) / 3 * df["v"]).groupby(session).cumsum()
    vol = df["v"].groupby(session).cumsum()
    vwap = (pv / vol).where(vol > 0)
    close = df["c"].to_numpy()
    returns = np.log(close[1:] / close[:-1])
    windows = np.lib.stride_tricks.sliding_window_view(returns, p.volatility)
    volatility = np.concatenate([np.full(p.volatility, np.nan), windows.std(axis=1, ddof=1)])
    return {"vwap": vwap.to_numpy(), "volatility": volatility}


def scale(name: str, candles: tuple[Candle, ...]) -> float:
    """The magnitude a value is measured against when it is itself near zero."""
    if name in OSCILLATORS:
        return 100.0
    if name == "obv":
        return float(np.mean([c.volume for c in candles]))
    if name == "volatility":
        return 1e-300  # purely relative: a flat window is exactly 0 on both sides
    return float(np.mean([c.close for c in candles]))


def assert_close(name: str, ours: np.ndarray, ref: np.ndarray, unit: float) -> None:
    ready = ~np.isnan(ref)
    assert ready.any(), name
    assert not np.isnan(ours[ready]).any(), f"{name}: None where the oracle has a value"
    err = np.abs(ours[ready] - ref[ready]) / np.maximum(np.abs(ref[ready]), unit)
    worst = int(np.argmax(err))
    assert err[worst] <= TOLERANCE, (name, err[worst], ours[ready][worst], ref[ready][worst])


@pytest.mark.parametrize("params", list(PARAMS), ids=list(PARAMS))
@pytest.mark.parametrize("path", FILES, ids=[f.name.split("-5m")[0] for f in FILES])
def test_equal_to_oracles_on_real_candles(path: Path, params: str) -> None:
    assert len(FILES) == 10
    candles = load(path)
    p = PARAMS[params]
    ours = columns(compute_history(candles, p))
    oracles = talib_oracle(candles, p) | numpy_pandas_oracle(candles, p)
    assert set(oracles) == set(NAMES)
    for name in NAMES:
        assert_close(name, ours[name], oracles[name], scale(name, candles))


def first_ready(values: list[IndicatorValues], name: str) -> int:
    return next(i for i, v in enumerate(values) if v[name] is not None)


@pytest.mark.parametrize("params", list(PARAMS), ids=list(PARAMS))
def test_warm_up_lengths_are_the_documented_ones(params: str) -> None:
    p = PARAMS[params]
    values = compute_history(
        [make_candle(100.0 + i % 7, 101.0 + i % 5, 99.0) for i in range(200)], p
    )
    fast, slow, signal = p.macd
    k, k_slow, d = p.stoch
    expected = {
        "sma": p.sma - 1,
        "ema_fast": p.ema_fast - 1,
        "ema_slow": p.ema_slow - 1,
        "wma": p.wma - 1,
        "rsi": p.rsi,
        "macd": slow - 1,
        "macd_signal": slow + signal - 2,
        "macd_hist": slow + signal - 2,
        "bb_upper": p.bb[0] - 1,
        "atr": p.atr,
        "adx": 2 * p.adx - 1,
        "plus_di": p.adx,
        "minus_di": p.adx,
        "stoch_k": k + k_slow - 2,
        "stoch_d": k + k_slow + d - 3,
        "obv": 0,
        "vwap": 0,
        "donchian_upper": p.donchian - 1,
        "volatility": p.volatility,
    }
    for name, index in expected.items():
        assert first_ready(values, name) == index, name
        assert all(v[name] is not None for v in values[index:]), name


def test_peek_is_the_next_update_and_leaves_the_state_alone() -> None:
    candles = load(FILES[3])[:400]
    live = IndicatorSet()
    reference = IndicatorSet()
    for i, candle in enumerate(candles):
        # An open candle that changes a few times before it closes as `candle`.
        for j in (3, 2, 1):
            partial = Candle(
                candle.instrument,
                candle.interval,
                candle.open_time,
                candle.open,
                candle.high - (candle.high - candle.close) / (j + 1),
                candle.low + (candle.close - candle.low) / (j + 1),
                candle.close * (1 + j * 1e-3 * (-1) ** i),
                candle.volume / j,
                0.0,
                1,
                False,
            )
            live.peek(partial)
        peeked = live.peek(candle)
        assert peeked == live.update(candle) == reference.update(candle)
        assert live.values == reference.values


def test_batch_path_equals_incremental_path() -> None:
    candles = load(FILES[0])
    indicators = IndicatorSet(PARAMS["short"])
    assert compute_history(candles, PARAMS["short"]) == [indicators.update(c) for c in candles]
    assert compute_history([]) == []


def test_the_garbage_collector_does_not_walk_the_state() -> None:
    """A live server holds a set per instrument and interval, each ~40 objects and ~300
    window slots of numbers: the state is off the collector's lists (domain/_untracked.py),
    so what a full collection visits is the same, and small, whatever the periods."""
    candles = load(FILES[0])[:300]
    short, long = IndicatorSet(PARAMS["short"]), IndicatorSet(PARAMS["long"])
    for candle in candles:
        short.update(candle)
        long.update(candle)
    assert long.values["donchian_upper"] is not None  # warmed up: every window is full
    assert collector_visits(long) == collector_visits(short) < 60
    for indicator in long.indicators:
        assert not gc.is_tracked(indicator)
        assert tracked_below(indicator) == []
        # What makes untracking safe: the state holds numbers, lists of them and itself only.
        assert_untrackable(indicator, INDICATOR_STATE)


def test_the_untracking_rule_is_checked() -> None:
    class Holder:
        def __init__(self) -> None:
            self.ema = Ema(3)
            self.window = [1.0, 2.0]
            self.labels: dict[str, list[int]] = {"window": [2]}

    assert_untrackable(Ema(3), INDICATOR_STATE)
    with pytest.raises(AssertionError, match="Holder holds a dict"):
        assert_untrackable(Holder(), (*INDICATOR_STATE, Holder))
    holder = Holder()
    untrack_tree(holder, (*INDICATOR_STATE, Holder))
    assert not any(map(gc.is_tracked, (holder, holder.ema, holder.window)))
    assert gc.is_tracked(holder.labels)  # not one of the kinds it may untrack


def test_values_start_empty_and_are_a_copy() -> None:
    indicators = IndicatorSet()
    assert indicators.values == dict.fromkeys(NAMES)
    indicators.update(make_candle(1.0))
    indicators.values["obv"] = 123.0
    assert indicators.values["obv"] == 1.0


def test_flat_market_gives_textbook_values() -> None:
    values = compute_history([make_candle(50.0, time=i * 300_000) for i in range(60)])[-1]
    assert values["sma"] == values["ema_slow"] == values["wma"] == values["vwap"] == 50.0
    assert values["bb_upper"] == values["bb_lower"] == 50.0
    assert values["atr"] == values["volatility"] == values["macd"] == 0.0
    assert values["rsi"] == 0.0  # TA-Lib's convention when nothing moved
    assert values["stoch_k"] == 0.0 and values["plus_di"] == 0.0


def test_vwap_restarts_at_each_session() -> None:
    day = INTERVALS["1d"]
    indicators = IndicatorSet()
    indicators.update(make_candle(10.0, time=day - 300_000, volume=5.0))
    assert indicators.update(make_candle(20.0, time=day, volume=1.0))["vwap"] == 20.0
    assert indicators.update(make_candle(30.0, time=day + 300_000, volume=1.0))["vwap"] == 25.0
    assert indicators.update(make_candle(40.0, time=2 * day, volume=0.0))["vwap"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"sma": 0},
        {"rsi": 1},
        {"macd": (26, 12, 9)},
        {"macd": (12, 12, 9)},
        {"bb": (20, 0.0)},
        {"bb": (1, 2.0)},
        {"stoch": (0, 3, 3)},
        {"vwap_session": "2d"},
        {"atr": True},
    ],
)
def test_bad_parameters_are_rejected(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IndicatorParams(**change)  # type: ignore[arg-type]


prices = st.lists(
    st.floats(min_value=1.0, max_value=2.0, allow_nan=False), min_size=40, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(prices, st.integers(min_value=2, max_value=15))
def test_random_series_match_talib(closes: list[float], period: int) -> None:
    candles = [
        make_candle(c, c * (1 + abs(c - 1.5) / 10), c * (1 - abs(c - 1.4) / 10), time=i * 300_000)
        for i, c in enumerate(closes)
    ]
    p = IndicatorParams(
        sma=period,
        ema_fast=period,
        wma=period,
        rsi=period,
        bb=(period, 2.0),
        atr=period,
        adx=period,
        donchian=period,
        stoch=(period, 3, 3),
    )
    ours = columns(compute_history(candles, p))
    ref = talib_oracle(tuple(candles), p)
    for name in ("sma", "ema_fast", "wma", "rsi", "bb_upper", "atr", "adx", "plus_di", "stoch_k"):
        assert_close(name, ours[name], ref[name], scale(name, tuple(candles)))


@settings(max_examples=60, deadline=None)
@given(prices, st.integers(min_value=0, max_value=39))
def test_peek_never_changes_what_update_gives(closes: list[float], at: int) -> None:
    candles = [make_candle(c, c + 0.1, c - 0.1, time=i * 300_000) for i, c in enumerate(closes)]
    plain, peeked = IndicatorSet(), IndicatorSet()
    for i, candle in enumerate(candles):
        if i >= at:
            peeked.peek(make_candle(candle.close * 1.5, candle.high * 2, candle.low / 2))
        assert peeked.update(candle) == plain.update(candle)


def test_individual_classes_have_update_and_peek() -> None:
    from cryptopulse.domain import indicators as ind

    single: list[Callable[[], object]] = [
        lambda: ind.Sma(3),
        lambda: ind.Ema(3),
        lambda: ind.Wma(3),
        lambda: ind.Rsi(3),
        lambda: ind.Macd(2, 3, 2),
        lambda: ind.Bollinger(3),
        lambda: ind.Volatility(3),
        lambda: ind.RollingMax(3),
        lambda: ind.RollingMin(3),
    ]
    for factory in single:
        a, b = factory(), factory()
        for x in [1.0, 3.0, 2.0, 5.0, 4.0, 4.0, 1.0, 7.0]:
            assert a.peek(x) == b.update(x)  # type: ignore[attr-defined]
            a.update(x)  # type: ignore[attr-defined]


@pytest.mark.parametrize("params", list(PARAMS), ids=list(PARAMS))
def test_each_class_alone_gives_the_set_values(params: str) -> None:
    """IndicatorSet inlines the classes' steady state: the classes must give the same bits."""
    from cryptopulse.domain import indicators as ind

    p = PARAMS[params]
    candles = load(FILES[8])
    closes: dict[str, Callable[[], object]] = {
        "sma": lambda: ind.Sma(p.sma),
        "ema_fast": lambda: ind.Ema(p.ema_fast),
        "wma": lambda: ind.Wma(p.wma),
        "rsi": lambda: ind.Rsi(p.rsi),
        "volatility": lambda: ind.Volatility(p.volatility),
    }
    singles = {name: factory() for name, factory in closes.items()}
    macd, bb = ind.Macd(*p.macd), ind.Bollinger(*p.bb)
    atr, adx, stoch = ind.Atr(p.atr), ind.Adx(p.adx), ind.Stochastic(*p.stoch)
    obv, vwap = ind.Obv(), ind.Vwap(INTERVALS[p.vwap_session])
    for c, expected in zip(candles, compute_history(candles, p), strict=True):
        got: dict[str, object] = {
            name: s.update(c.close)  # type: ignore[attr-defined]
            for name, s in singles.items()
        }
        got["macd"], got["macd_signal"], got["macd_hist"] = macd.update(c.close)
        got["bb"] = bb.update(c.close)
        got["atr"] = atr.update(c.high, c.low, c.close)
        got["adx"], got["plus_di"], got["minus_di"] = adx.update(c.high, c.low, c.close)
        got["stoch_k"], got["stoch_d"] = stoch.update(c.high, c.low, c.close)
        got["obv"] = obv.update(c.close, c.volume)
        got["vwap"] = vwap.update(c.open_time, c.high, c.low, c.close, c.volume)
        bands = got.pop("bb")
        expected_bands = (expected["bb_upper"], expected["bb_middle"], expected["bb_lower"])
        assert bands == (None if expected["bb_upper"] is None else expected_bands)
        assert got == {name: expected[name] for name in got}
