"""Volume and dispersion indicators, incremental: OBV, session VWAP, rolling volatility.

``update`` advances the state with a closed candle, ``peek`` computes the same result for
the open one without touching it (docs/indicators.md).
"""

from __future__ import annotations

from math import log, sqrt

from cryptopulse.domain._indicators_ma import WindowVariance, check_period

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
        obv = self.value
        prev = self._prev
        self._prev = close
        if obv is None or prev is None:
            obv = volume
        elif close > prev:
            obv += volume
        elif close < prev:
            obv -= volume
        self.value = obv
        return obv

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
        session = open_time // self.session_ms
        if session != self._session:
            self._session, self._pv, self._v = session, 0.0, 0.0
        self._pv += (high + low + close) / 3.0 * volume
        self._v += volume
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

    __slots__ = ("_prev", "_var", "period", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period(period, 2)
        self._var = WindowVariance(period)
        self._prev: float | None = None
        self.value: float | None = None

    @staticmethod
    def _ret(close: float, prev: float) -> float:
        # A non-positive price is bad data, not a -100 % move: count it as no change.
        return log(close / prev) if close > 0.0 and prev > 0.0 else 0.0

    def _std(self, m2: float) -> float:
        return sqrt(m2 / (self.period - 1)) if m2 > 0.0 else 0.0

    def update(self, close: float) -> float | None:
        """Add a closed value; the volatility, or None during warm-up."""
        prev = self._prev
        self._prev = close
        if prev is None:
            return None
        # A non-positive price is bad data, not a -100 % move: count it as no change.
        r = log(close / prev) if close > 0.0 and prev > 0.0 else 0.0
        var = self._var
        m2 = var.update(r)
        if var.count < self.period:
            return None
        value = sqrt(m2 / (self.period - 1)) if m2 > 0.0 else 0.0
        self.value = value
        return value

    def peek(self, close: float) -> float | None:
        """The volatility if `close` closed now; the state is untouched."""
        prev = self._prev
        if prev is None or self._var.count + 1 < self.period:
            return None
        return self._std(self._var.peek(self._ret(close, prev)))
