"""Model features from closed candles, computed by the live indicator code.

`FeatureState` advances one closed candle at a time (the live path, O(1) per candle) and
`feature_matrix` runs that same state over stored history (the training path), so a model
sees in production exactly the numbers it was trained on. A row at candle t uses candles
up to and including t only: nothing from the future can leak in (tests/ml/test_features.py
changes the future and checks that the past rows do not move).

Every feature is scale-free (a return, a ratio or a bounded oscillator), so one feature
set serves any instrument and price level. The names and formulas are in docs/models.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cryptopulse.domain.indicators import IndicatorSet, IndicatorValues
from cryptopulse.domain.models import Candle

__all__ = ["FEATURES", "FEATURE_SET", "FeatureMatrix", "FeatureState", "feature_matrix"]

FEATURE_SET = "cp-v1"
"""Name of this feature set; a stored model records it, so a change here retires models."""

FEATURES: tuple[str, ...] = (
    "ret_1",
    "ret_3",
    "ret_12",
    "ret_48",
    "rsi",
    "macd_hist",
    "bb_position",
    "atr",
    "adx",
    "di_spread",
    "stoch_k",
    "vwap_gap",
    "donchian_position",
    "volatility",
    "ema_gap",
    "sma_gap",
    "volume_ratio",
    "range",
    "body",
)

_LOOKBACK = 48  # longest return feature, in candles
_VOLUME_WINDOW = 20
_NEEDED = (
    *("rsi", "macd_hist", "bb_upper", "atr", "adx", "stoch_k", "donchian_upper"),
    *("volatility", "ema_slow", "sma"),
)

Rows = npt.NDArray[np.float32]


def _ratio(num: float, den: float, default: float) -> float:
    return num / den if den > 0.0 else default


def _log_ret(close: float, before: float) -> float:
    # A non-positive price is bad data, not a -100 % move (as the Volatility indicator does).
    return math.log(close / before) if close > 0.0 and before > 0.0 else 0.0


def _row(candle: Candle, v: IndicatorValues, closes: deque[float], mean_vol: float) -> list[float]:
    """The feature values after `candle` (all of `_NEEDED` present)."""
    c = candle.close
    ind: dict[str, float] = {k: x for k, x in v.items() if x is not None}
    width = ind["bb_upper"] - ind["bb_lower"]
    channel = ind["donchian_upper"] - ind["donchian_lower"]
    vwap = v["vwap"]
    return [
        _log_ret(c, closes[-2]),
        _log_ret(c, closes[-4]),
        _log_ret(c, closes[-13]),
        _log_ret(c, closes[0]),
        ind["rsi"] / 100.0,
        _ratio(ind["macd_hist"], c, 0.0),
        _ratio(c - ind["bb_middle"], width, 0.0),
        _ratio(ind["atr"], c, 0.0),
        ind["adx"] / 100.0,
        (ind["plus_di"] - ind["minus_di"]) / 100.0,
        ind["stoch_k"] / 100.0,
        _ratio(c, vwap, 1.0) - 1.0 if vwap is not None else 0.0,
        _ratio(c - ind["donchian_lower"], channel, 0.5),
        ind["volatility"],
        _ratio(ind["ema_fast"], ind["ema_slow"], 1.0) - 1.0,
        _ratio(c, ind["sma"], 1.0) - 1.0,
        math.log((candle.volume + 1e-12) / (mean_vol + 1e-12)),
        _ratio(candle.high - candle.low, c, 0.0),
        _ratio(c - candle.open, c, 0.0),
    ]


class FeatureState:
    """The features of one instrument and interval, advanced by closed candles in order."""

    __slots__ = ("_closes", "_indicators", "_volumes", "last_time", "values")

    def __init__(self) -> None:
        self._indicators = IndicatorSet()
        self._closes: deque[float] = deque(maxlen=_LOOKBACK + 1)
        self._volumes: deque[float] = deque(maxlen=_VOLUME_WINDOW)
        self.last_time: int | None = None
        self.values: list[float] | None = None  # after the latest candle; None in warm-up

    def update(self, candle: Candle) -> list[float] | None:
        """Advance by one closed candle; its feature row (in `FEATURES` order) or None
        while warming up. A candle not newer than the last one is ignored."""
        if self.last_time is not None and candle.open_time <= self.last_time:
            return self.values
        self.last_time = candle.open_time
        values = self._indicators.update(candle)
        self._closes.append(candle.close)
        self._volumes.append(candle.volume)
        ready = len(self._closes) > _LOOKBACK and all(values[k] is not None for k in _NEEDED)
        if not ready:
            self.values = None
            return None
        mean_vol = sum(self._volumes) / len(self._volumes)
        self.values = _row(candle, values, self._closes, mean_vol)
        return self.values


@dataclass(frozen=True, slots=True)
class FeatureMatrix:
    """Feature rows of the warm candles of a series: `rows[i]` is after candle `index[i]`."""

    times: npt.NDArray[np.int64]  # open time of each row's candle
    index: npt.NDArray[np.int64]  # position of that candle in the input sequence
    rows: Rows  # shape (n, len(FEATURES)), float32


def feature_matrix(candles: Sequence[Candle]) -> FeatureMatrix:
    """The batch path: `FeatureState` over closed candles in time order (CPU-bound; run
    it in a worker thread from async code)."""
    state = FeatureState()
    times: list[int] = []
    index: list[int] = []
    rows: list[list[float]] = []
    for i, candle in enumerate(candles):
        row = state.update(candle)
        if row is not None and state.last_time == candle.open_time:
            times.append(candle.open_time)
            index.append(i)
            rows.append(row)
    return FeatureMatrix(
        np.asarray(times, dtype=np.int64),
        np.asarray(index, dtype=np.int64),
        np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES)),
    )
