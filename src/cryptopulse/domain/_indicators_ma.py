"""Moving averages and Bollinger Bands, incremental: O(1) per value, no allocation.

Every class has ``update(x)`` for a closed value (advances the state) and ``peek(x)`` for
the open one (what ``update`` would return, state untouched). The arithmetic follows
TA-Lib's own order of operations, so results agree to the last few bits
(docs/indicators.md has the formulas and warm-ups).
"""

from __future__ import annotations

from math import sqrt

__all__ = ["Bollinger", "Ema", "Sma", "WindowVariance", "Wma", "check_period"]

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


class WindowVariance:
    """Mean and sum of squared deviations (m2) of the last `period` values, O(1) per value.

    A sliding-window Welford update; ``E[x²] − E[x]²`` would lose every digit when the
    spread is 1e-7 of the level. When an update cancels most of m2 (a spike leaves a quiet
    window) the rounding left from the larger values would dominate, so m2 is then
    recomputed exactly from the window (O(period), and only then).
    """

    __slots__ = ("_buf", "_i", "_m2", "_mean", "_n", "_scale", "period")

    def __init__(self, period: int) -> None:
        self.period = check_period(period, 2)
        self._buf = [0.0] * period  # the window; _buf[_i] is the oldest once it is full
        self._i = 0
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._scale = 0.0  # largest magnitude m2 has met since it was last exact

    @property
    def count(self) -> int:
        """Values in the window (up to `period`)."""
        return self._n

    def _exact(self, x: float) -> tuple[float, float, float]:
        window = list(self._buf) if self._n == self.period else self._buf[: self._n]
        if self._n == self.period:
            window[self._i] = x
        else:
            window.append(x)
        mean = sum(window) / len(window)
        m2 = sum((v - mean) * (v - mean) for v in window)
        return mean, m2, m2

    def _next(self, x: float) -> tuple[float, float, float]:
        """(mean, m2, scale) after `x` enters the window and the oldest value leaves it."""
        mean, m2 = self._mean, self._m2
        if self._n < self.period:
            d = x - mean
            new_mean = mean + d / (self._n + 1)
            term = d * (x - new_mean)
        else:
            old = self._buf[self._i]
            d = x - old
            new_mean = mean + d / self.period
            term = d * (x - new_mean + old - mean)
        new_m2 = m2 + term
        scale = self._scale
        if term > scale or -term > scale:
            scale = abs(term)
        if m2 > scale:
            scale = m2
        if new_m2 <= scale * 1e-3:  # cancelled most of it: recompute exactly
            return self._exact(x)  # (update inlines this function: keep them equal)
        return new_mean, new_m2, scale

    def update(self, x: float) -> float:
        """Add a value; the new m2."""
        i = self._i
        buf = self._buf
        if self._n == self.period:  # the steady state, inlined: it is the hot path
            mean, m2 = self._mean, self._m2
            old = buf[i]
            d = x - old
            new_mean = mean + d / self.period
            term = d * (x - new_mean + old - mean)
            new_m2 = m2 + term
            scale = self._scale
            if term > scale or -term > scale:
                scale = abs(term)
            if m2 > scale:
                scale = m2
            if new_m2 <= scale * 1e-3:
                new_mean, new_m2, scale = self._exact(x)
            self._mean, self._m2, self._scale = new_mean, new_m2, scale
        else:
            self._mean, self._m2, self._scale = self._next(x)
            self._n += 1
        buf[i] = x
        self._i = i + 1 if i + 1 < self.period else 0
        return self._m2

    def peek(self, x: float) -> float:
        """m2 if `x` were added; the state is untouched."""
        return self._next(x)[1]


class Bollinger:
    """Bollinger Bands: SMA ± k × population standard deviation over `period` values.

    The middle band is the SMA with TA-Lib's running sums, the deviation √(m2/n) from
    `WindowVariance`. ``update`` returns (upper, middle, lower) or None during warm-up.
    """

    __slots__ = ("_partial", "_var", "k", "period", "value")

    def __init__(self, period: int, k: float = 2.0) -> None:
        self.period = check_period(period, 2)
        self.k = float(k)
        self._var = WindowVariance(period)
        self._partial = 0.0  # sum of the newest period-1 values, as in `Sma`
        self.value: BandValues | None = None

    def update(self, x: float) -> BandValues | None:
        """Add a closed value; (upper, middle, lower), or None during warm-up."""
        var = self._var
        warm = var.count < self.period - 1
        m2 = var.update(x)
        if warm:
            self._partial += x
            return None
        total = self._partial + x
        self._partial = total - var._buf[var._i]  # the oldest value, next to leave
        mean = total / self.period
        dev = sqrt(m2 / self.period) * self.k if m2 > 0.0 else 0.0
        value = (mean + dev, mean, mean - dev)
        self.value = value
        return value

    def peek(self, x: float) -> BandValues | None:
        """The bands if `x` closed now; the state is untouched."""
        if self._var.count < self.period - 1:
            return None
        mean = (self._partial + x) / self.period
        m2 = self._var.peek(x)
        dev = sqrt(m2 / self.period) * self.k if m2 > 0.0 else 0.0
        return (mean + dev, mean, mean - dev)
