"""Moving averages and Bollinger Bands, incremental: O(1) per value, no allocation.

Every class has ``update(x)`` for a closed value (advances the state) and ``peek(x)`` for
the open one (what ``update`` would return, state untouched). The arithmetic follows
TA-Lib's own order of operations, so results agree to the last few bits
(docs/indicators.md has the formulas and warm-ups).
"""

from __future__ import annotations

from math import sqrt

__all__ = ["Bollinger", "Ema", "Sma", "Wma", "check_period"]

BandValues = tuple[float, float, float]


def check_period(period: int, minimum: int = 1, name: str = "period") -> int:
    """Validate an indicator period (an int of at least `minimum`)."""
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {period!r}")
    return period


class Sma:
    """Simple moving average of the last `period` values; first value at the period-th."""

    __slots__ = ("_buf", "_i", "_n", "_partial", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period)
        # The window's values; _buf[_i] is the oldest once it is full.
        self._buf = [0.0] * period
        self._i = 0
        self._n = 0
        # Sum of the newest period-1 values: TA-Lib keeps exactly this between steps.
        self._partial = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        """Add a closed value; the average, or None during warm-up."""
        buf = self._buf
        i = self._i
        buf[i] = x
        i += 1
        if i == self.period:
            i = 0
        self._i = i
        if self._n < self.period - 1:
            self._n += 1
            self._partial += x
            return None
        total = self._partial + x
        self._partial = total - buf[i]
        value = total / self.period
        self.value = value
        return value

    def peek(self, x: float) -> float | None:
        """The average if `x` closed now; the state is untouched."""
        if self._n < self.period - 1:
            return None
        return (self._partial + x) / self.period


class Ema:
    """Exponential moving average, k = 2/(n+1), seeded with the SMA of the first n values."""

    __slots__ = ("_n", "_sum", "k", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period)
        self.k = 2.0 / (period + 1)
        self._n = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        """Add a closed value; the average, or None during warm-up."""
        v = self.value
        if v is not None:
            v = (x - v) * self.k + v
        else:
            self._n += 1
            self._sum += x
            if self._n < self.period:
                return None
            v = self._sum / self.period
        self.value = v
        return v

    def peek(self, x: float) -> float | None:
        """The average if `x` closed now; the state is untouched."""
        v = self.value
        if v is not None:
            return (x - v) * self.k + v
        if self._n + 1 < self.period:
            return None
        return (self._sum + x) / self.period


class Wma:
    """Linearly weighted moving average (weights 1..n, newest heaviest)."""

    __slots__ = ("_buf", "_divider", "_i", "_n", "_sub", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period)
        self._divider = float(period * (period + 1) // 2)
        self._buf = [0.0] * period
        self._i = 0
        self._n = 0
        self._sum = 0.0  # weighted sum with the weights the next value will see (0..n-1)
        self._sub = 0.0  # plain sum of the window
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        """Add a closed value; the average, or None during warm-up."""
        buf = self._buf
        i = self._i
        old = buf[i]  # the value that leaves the window now (0.0 while filling)
        buf[i] = x
        self._i = i + 1 if i + 1 < self.period else 0
        if self._n < self.period - 1:
            self._n += 1
            self._sub += x
            self._sum += x * self._n
            return None
        sub = self._sub + x
        sub -= old
        self._sub = sub
        total = self._sum + x * self.period
        value = total / self._divider
        self._sum = total - sub
        self.value = value
        return value

    def peek(self, x: float) -> float | None:
        """The average if `x` closed now; the state is untouched."""
        if self._n < self.period - 1:
            return None
        return (self._sum + x * self.period) / self._divider


class Bollinger:
    """Bollinger Bands: SMA ± k × population standard deviation over `period` values.

    ``update`` returns (upper, middle, lower) or None during warm-up.
    """

    __slots__ = ("_buf", "_i", "_n", "_partial", "_partial2", "k", "period", "value")

    def __init__(self, period: int, k: float = 2.0) -> None:
        self.period = check_period(period, 2)
        self.k = float(k)
        self._buf = [0.0] * period
        self._i = 0
        self._n = 0
        self._partial = 0.0  # sum of the newest period-1 values
        self._partial2 = 0.0  # sum of their squares
        self.value: BandValues | None = None

    def _bands(self, total: float, total2: float) -> BandValues:
        mean = total / self.period
        # E[x²] − E[x]², as TA-Lib computes it; a tiny negative from rounding means 0.
        var = total2 / self.period - mean * mean
        dev = sqrt(var) * self.k if var > 0.0 else 0.0
        return (mean + dev, mean, mean - dev)

    def update(self, x: float) -> BandValues | None:
        """Add a closed value; (upper, middle, lower), or None during warm-up."""
        buf = self._buf
        i = self._i
        buf[i] = x
        i += 1
        if i == self.period:
            i = 0
        self._i = i
        x2 = x * x
        if self._n < self.period - 1:
            self._n += 1
            self._partial += x
            self._partial2 += x2
            return None
        total = self._partial + x
        total2 = self._partial2 + x2
        old = buf[i]
        self._partial = total - old
        self._partial2 = total2 - old * old
        value = self._bands(total, total2)
        self.value = value
        return value

    def peek(self, x: float) -> BandValues | None:
        """The bands if `x` closed now; the state is untouched."""
        if self._n < self.period - 1:
            return None
        return self._bands(self._partial + x, self._partial2 + x * x)
