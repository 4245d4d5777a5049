"""Volume and dispersion indicators, incremental: OBV, session VWAP, rolling volatility.

``update`` advances the state with a closed candle, ``peek`` computes the same result for
the open one without touching it (docs/indicators.md).
"""

from __future__ import annotations

from math import log, sqrt

from cryptopulse.domain._indicators_ma import check_period

__all__ = ["Obv", "Volatility", "Vwap"]


class Obv:
    """On-balance volume: starts at the first candle's volume (as TA-Lib), then adds the
    volume of an up-close, subtracts that of a down-close, and keeps it on an equal close."""

    __slots__ = ("_prev", "value")

    def __init__(self) -> None:
        self._prev: float | None = None
        self.value: float | None = None

    def _next(self, close: float, volume: float) -> float:
        obv = self.value
        prev = self._prev
        if obv is None or prev is None:
            return volume
        if close > prev:
            return obv + volume
        if close < prev:
            return obv - volume
        return obv

    def update(self, close: float, volume: float) -> float:
        """Add a closed candle; the OBV."""
        value = self._next(close, volume)
        self._prev = close
        self.value = value
        return value

    def peek(self, close: float, volume: float) -> float:
        """The OBV if this candle closed now; the state is untouched."""
        return self._next(close, volume)


class Vwap:
    """Session-anchored VWAP: Σ typical price × volume / Σ volume since the session began.

    Typical price = (high + low + close)/3. A session is an epoch-aligned UTC span of
    `session_ms` (1d: midnight UTC); the sums restart with the first candle of a new one.
    None while the session has no volume yet.
    """

    __slots__ = ("_pv", "_session", "_v", "session_ms", "value")

    def __init__(self, session_ms: int = 86_400_000) -> None:
        self.session_ms = check_period(session_ms, 1, "session_ms")
        self._session: int | None = None
        self._pv = 0.0
        self._v = 0.0
        self.value: float | None = None

    def _sums(
        self, open_time: int, high: float, low: float, close: float, volume: float
    ) -> tuple[int, float, float]:
        session = open_time // self.session_ms
        pv, v = (self._pv, self._v) if session == self._session else (0.0, 0.0)
        return session, pv + (high + low + close) / 3.0 * volume, v + volume

    def update(
        self, open_time: int, high: float, low: float, close: float, volume: float
    ) -> float | None:
        """Add a closed candle; the session VWAP, or None if the session has no volume."""
        self._session, self._pv, self._v = self._sums(open_time, high, low, close, volume)
        value = self._pv / self._v if self._v > 0.0 else None
        self.value = value
        return value

    def peek(
        self, open_time: int, high: float, low: float, close: float, volume: float
    ) -> float | None:
        """The VWAP if this candle closed now; the state is untouched."""
        _, pv, v = self._sums(open_time, high, low, close, volume)
        return pv / v if v > 0.0 else None


class Volatility:
    """Rolling volatility: sample standard deviation (n − 1) of the last n log returns
    ln(close/previous close), per candle (not annualized). First value at the (n+1)-th close.
    """

    __slots__ = ("_buf", "_flat", "_i", "_n", "_prev", "_sum", "_sum2", "period", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, 2)
        self._buf = [0.0] * period  # the window's returns; _buf[_i] is the oldest
        self._i = 0
        self._n = 0  # returns seen, up to period
        self._flat = 0  # zero returns in the window: all zero means exactly 0
        self._sum = 0.0
        self._sum2 = 0.0
        self._prev: float | None = None
        self.value: float | None = None

    @staticmethod
    def _ret(close: float, prev: float) -> float:
        # A non-positive price is bad data, not a -100 % move: count it as no change.
        return log(close / prev) if close > 0.0 and prev > 0.0 else 0.0

    def _std(self, s: float, s2: float, flat: int) -> float:
        if flat == self.period:
            return 0.0
        n = self.period
        var = (s2 - s * s / n) / (n - 1)
        return sqrt(var) if var > 0.0 else 0.0

    def update(self, close: float) -> float | None:
        """Add a closed value; the volatility, or None during warm-up."""
        prev = self._prev
        self._prev = close
        if prev is None:
            return None
        r = self._ret(close, prev)
        buf = self._buf
        i = self._i
        full = self._n == self.period
        if full:
            old = buf[i]
            self._sum -= old
            self._sum2 -= old * old
            self._flat -= old == 0.0
        else:
            self._n += 1
        buf[i] = r
        self._i = i + 1 if i + 1 < self.period else 0
        self._sum += r
        self._sum2 += r * r
        self._flat += r == 0.0
        if self._n < self.period:
            return None
        value = self._std(self._sum, self._sum2, self._flat)
        self.value = value
        return value

    def peek(self, close: float) -> float | None:
        """The volatility if `close` closed now; the state is untouched."""
        prev = self._prev
        if prev is None or self._n + 1 < self.period:
            return None
        r = self._ret(close, prev)
        s, s2, flat = self._sum, self._sum2, self._flat
        if self._n == self.period:  # same order of operations as update: equal bits
            old = self._buf[self._i]
            s, s2, flat = s - old, s2 - old * old, flat - (old == 0.0)
        return self._std(s + r, s2 + r * r, flat + (r == 0.0))
