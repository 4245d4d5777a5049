"""The live signal state of one instrument and interval (analytics/_signals.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from cryptopulse.analytics._signals import LIVE_STATE, LiveSignals, warm_state
from cryptopulse.domain._untracked import assert_untrackable
from cryptopulse.domain.indicators import INDICATOR_STATE, IndicatorSet
from cryptopulse.domain.signals import SignalEngine
from cryptopulse.importer import read_candles
from gcwalk import tracked_below

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_the_garbage_collector_does_not_walk_a_live_series() -> None:
    """A server keeps one state per instrument and interval for as long as it runs: the
    state, its indicator set, signal engine, rules, parameters and last signal are off
    the collector's lists (domain/_untracked.py), and stay so as candles close."""
    path = sorted((DATA / "candles").glob("*-5m.csv.gz"))[0]
    candles = list(read_candles(path, "binance:BTC-USDT", "5m"))[:300]
    warmed, rows = warm_state("binance:BTC-USDT", "5m", candles[:200])
    live = LiveSignals("binance:BTC-USDT", "5m")
    for candle in candles[:200]:
        live.update(candle)
    # The same signals as the warm-up path, which builds the state in a worker thread.
    assert live.signal == warmed.signal and live.values == warmed.values and rows
    for candle in candles[200:]:
        result = warmed.update(candle)
        assert result is not None
    assert warmed.signal is not None and warmed.signal.time == candles[-1].open_time
    gc.collect()
    for state in (live, warmed):
        for part in (state, state.indicators, state.engine, state.engine.rules, state.signal):
            assert not gc.is_tracked(part)
        assert tracked_below(state) == []
        # What makes untracking them safe: numbers, strings and each other, nothing else.
        assert_untrackable(state, (*LIVE_STATE, *INDICATOR_STATE))
    # Outside a live state, sets and engines are the usual objects (batch paths, requests).
    assert not gc.is_tracked(IndicatorSet().indicators[0])
    assert gc.is_tracked(SignalEngine())
