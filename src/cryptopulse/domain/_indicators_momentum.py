"""Momentum indicators, incremental: RSI (Wilder), MACD, Stochastic %K/%D.

``update`` advances the state with a closed value, ``peek`` computes the same result for the
open one without touching it; TA-Lib's conventions (docs/indicators.md).
"""

from __future__ import annotations

from cryptopulse.domain._indicators_ma import Ema, Sma, check_period
from cryptopulse.domain._indicators_range import RollingMax, RollingMin

__all__ = ["Macd", "Rsi", "Stochastic"]

MacdValues = tuple[float | None, float | None, float | None]
StochValues = tuple[float | None, float | None]
_NO_MACD: MacdValues = (None, None, None)
_NO_STOCH: StochValues = (None, None)


class Rsi:
    """Relative strength index with Wilder smoothing: 100·gain/(gain + loss).

    Average gain and loss start as the means of the first n changes, then
    ``avg = (avg·(n−1) + x)/n``. The first value comes at the (n+1)-th input. A window with
    no change at all gives 0, as TA-Lib does.
    """

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period, 2)
        self._n = 0  # changes seen
        self._gain = 0.0
        self._loss = 0.0
        self._prev: float | None = None
        self.value: float | None = None

    def _next(self, x: float, prev: float) -> tuple[float, float, float | None]:
        """New (average gain, average loss, rsi) for the change from `prev` to `x`.

        `update` inlines the steady state of this: keep them equal.
        """
        diff = x - prev
        n = self.period
        gain, loss = self._gain, self._loss
        if self._n >= n:
            loss *= n - 1
            gain *= n - 1
        if diff < 0:
            loss -= diff
        else:
            gain += diff
        if self._n + 1 < n:
            return gain, loss, None
        # Sums become averages at the n-th change; afterwards this completes the smoothing.
        loss /= n
        gain /= n
        total = gain + loss
        return gain, loss, 100.0 * (gain / total) if total != 0.0 else 0.0

    def update(self, x: float) -> float | None:
        """Add a closed value; the RSI, or None during warm-up."""
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        # _next inlined for the steady state: this is the hot path.
        n = self.period
        if self._n < n:
            self._gain, self._loss, value = self._next(x, prev)
            self._n += 1
            if value is not None:
                self.value = value
            return value
        diff = x - prev
        loss = self._loss * (n - 1)
        gain = self._gain * (n - 1)
        if diff < 0:
            loss -= diff
        else:
            gain += diff
        loss /= n
        gain /= n
        self._gain, self._loss = gain, loss
        total = gain + loss
        value = 100.0 * (gain / total) if total != 0.0 else 0.0
        self.value = value
        return value

    def peek(self, x: float) -> float | None:
        """The RSI if `x` closed now; the state is untouched."""
        if self._prev is None:
            return None
        return self._next(x, self._prev)[2]


class Macd:
    """MACD line (fast EMA − slow EMA), its signal EMA and the histogram (line − signal).

    As in TA-Lib, both EMAs start at the slow period: the fast one is seeded with the SMA
    of the `fast` values ending there, not at its own period. ``update`` returns
    (macd, signal, hist); the line comes at the slow-th value, the other two
    ``signal − 1`` values later.
    """

    __slots__ = ("_fast", "_signal", "_skip", "_slow", "value")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        check_period(fast, 2, "fast")
        check_period(signal, 1, "signal")
        if check_period(slow, 2, "slow") <= fast:
            raise ValueError(f"slow ({slow}) must be longer than fast ({fast})")
        self._fast = Ema(fast)
        self._slow = Ema(slow)
        self._signal = Ema(signal)
        self._skip = slow - fast  # values the fast EMA never sees
        self.value: MacdValues = _NO_MACD

    def update(self, x: float) -> MacdValues:
        """Add a closed value; (macd, signal, hist), each None during its warm-up."""
        slow = self._slow.update(x)
        if self._skip:
            self._skip -= 1
            return _NO_MACD
        fast = self._fast.update(x)
        if slow is None or fast is None:
            return _NO_MACD
        line = fast - slow
        signal = self._signal.update(line)
        value = (line, signal, None if signal is None else line - signal)
        self.value = value
        return value

    def peek(self, x: float) -> MacdValues:
        """The values if `x` closed now; the state is untouched."""
        if self._skip:
            return _NO_MACD
        slow = self._slow.peek(x)
        fast = self._fast.peek(x)
        if slow is None or fast is None:
            return _NO_MACD
        line = fast - slow
        signal = self._signal.peek(line)
        return (line, signal, None if signal is None else line - signal)


class Stochastic:
    """Slow stochastic: %K = SMA(fast %K, k_slow), %D = SMA(%K, d), as TA-Lib's STOCH.

    fast %K = (close − lowest low)/((highest high − lowest low)/100) over `k` candles, 0 when
    the range is 0. ``update`` returns (stoch_k, stoch_d).
    """

    __slots__ = ("_d", "_high", "_k", "_low", "value")

    def __init__(self, k: int = 14, k_slow: int = 3, d: int = 3) -> None:
        self._high = RollingMax(check_period(k, 1, "k"))
        self._low = RollingMin(k)
        self._k = Sma(check_period(k_slow, 1, "k_slow"))
        self._d = Sma(check_period(d, 1, "d"))
        self.value: StochValues = _NO_STOCH

    @staticmethod
    def _fast_k(highest: float, lowest: float, close: float) -> float:
        diff = (highest - lowest) / 100.0
        return (close - lowest) / diff if diff != 0.0 else 0.0

    def update(self, high: float, low: float, close: float) -> StochValues:
        """Add a closed candle; (%K, %D), each None during its warm-up."""
        highest = self._high.update(high)
        lowest = self._low.update(low)
        if highest is None or lowest is None:
            return _NO_STOCH
        diff = (highest - lowest) / 100.0  # _fast_k, inlined
        k = self._k.update((close - lowest) / diff if diff != 0.0 else 0.0)
        if k is None:
            return _NO_STOCH
        value = (k, self._d.update(k))
        self.value = value
        return value

    def peek(self, high: float, low: float, close: float) -> StochValues:
        """The values if this candle closed now; the state is untouched."""
        highest = self._high.peek(high)
        lowest = self._low.peek(low)
        if highest is None or lowest is None:
            return _NO_STOCH
        k = self._k.peek(self._fast_k(highest, lowest, close))
        if k is None:
            return _NO_STOCH
        return (k, self._d.peek(k))
