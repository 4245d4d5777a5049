"""Range indicators over high/low/close, incremental: rolling extremes, ATR, ADX, Donchian.

``update`` advances the state with a closed candle, ``peek`` computes the same result for
the open candle without touching it. Wilder smoothing follows TA-Lib's order of operations
(docs/indicators.md).
"""

from __future__ import annotations

from cryptopulse.domain._indicators_ma import check_period

__all__ = ["Adx", "Atr", "Donchian", "RollingMax", "RollingMin", "true_range"]

AdxValues = tuple[float | None, float | None, float | None]
BandValues = tuple[float, float, float]
_NO_ADX: AdxValues = (None, None, None)


def true_range(high: float, low: float, prev_close: float) -> float:
    """max(high − low, |high − previous close|, |low − previous close|)."""
    tr = high - low
    d = abs(high - prev_close)
    if d > tr:
        tr = d
    d = abs(low - prev_close)
    if d > tr:
        tr = d
    return tr


class _MonotonicQueue:
    """Candidates for the window's extreme, best first, in two fixed rings of `period`
    slots (a deque per indicator costs ~1 KB; 500 instruments would spill the CPU cache).

    Each value is pushed once and popped at most once: O(1) amortized per update.
    Positions are kept modulo a power of two ≥ 2·period (256 for periods up to 128), so
    they stay CPython's cached small ints instead of a new int object per update.
    """

    __slots__ = ("_head", "_idx", "_mask", "_seen", "_size", "_t", "_val", "period")

    def __init__(self, period: int) -> None:
        self.period = check_period(period)
        self._val = [0.0] * period
        self._idx = [0] * period
        self._mask = (1 << max(8, (2 * period - 1).bit_length())) - 1
        self._head = 0
        self._size = 0
        self._t = 0  # position of the next value, modulo _mask + 1
        self._seen = 0  # values seen, up to period

    def _front_after_expiry(self) -> int:
        """Index of the first candidate still inside the window once a value is added."""
        if self._size and (self._t - self._idx[self._head]) & self._mask >= self.period:
            return 1
        return 0


class RollingMax(_MonotonicQueue):
    """Maximum of the last `period` values: a monotonic queue, O(1) amortized."""

    __slots__ = ()

    def update(self, x: float) -> float | None:
        """Add a closed value; the maximum, or None until `period` values were seen."""
        p, val, idx = self.period, self._val, self._idx
        t, head, size = self._t, self._head, self._size
        if size and (t - idx[head]) & self._mask >= p:  # the oldest value leaves
            head = head + 1 if head + 1 < p else 0
            size -= 1
        while size:
            back = head + size - 1
            if back >= p:
                back -= p
            if val[back] > x:
                break
            size -= 1
        pos = head + size
        if pos >= p:
            pos -= p
        val[pos] = x
        idx[pos] = t
        self._head, self._size, self._t = head, size + 1, (t + 1) & self._mask
        if self._seen < p:
            self._seen += 1
            if self._seen < p:
                return None
        return val[head]

    def peek(self, x: float) -> float | None:
        """The maximum if `x` closed now; the state is untouched."""
        if self._seen + 1 < self.period:
            return None
        skip = self._front_after_expiry()
        if self._size > skip:
            pos = self._head + skip
            best = self._val[pos - self.period if pos >= self.period else pos]
            return best if best > x else x
        return x


class RollingMin(_MonotonicQueue):
    """Minimum of the last `period` values: a monotonic queue, O(1) amortized."""

    __slots__ = ()

    def update(self, x: float) -> float | None:
        """Add a closed value; the minimum, or None until `period` values were seen."""
        p, val, idx = self.period, self._val, self._idx
        t, head, size = self._t, self._head, self._size
        if size and (t - idx[head]) & self._mask >= p:
            head = head + 1 if head + 1 < p else 0
            size -= 1
        while size:
            back = head + size - 1
            if back >= p:
                back -= p
            if val[back] < x:
                break
            size -= 1
        pos = head + size
        if pos >= p:
            pos -= p
        val[pos] = x
        idx[pos] = t
        self._head, self._size, self._t = head, size + 1, (t + 1) & self._mask
        if self._seen < p:
            self._seen += 1
            if self._seen < p:
                return None
        return val[head]

    def peek(self, x: float) -> float | None:
        """The minimum if `x` closed now; the state is untouched."""
        if self._seen + 1 < self.period:
            return None
        skip = self._front_after_expiry()
        if self._size > skip:
            pos = self._head + skip
            best = self._val[pos - self.period if pos >= self.period else pos]
            return best if best < x else x
        return x


class Atr:
    """Average true range with Wilder smoothing, seeded with the mean of the first n TRs.

    The first candle has no previous close, so the first value comes at the (n+1)-th candle.
    """

    __slots__ = ("_n", "_prev_close", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period, 2)
        self._n = 0  # true ranges seen
        self._sum = 0.0
        self._prev_close: float | None = None
        self.value: float | None = None

    def _next(self, tr: float) -> float | None:
        # `update` inlines this: keep them equal.
        v = self.value
        if v is not None:
            return (v * (self.period - 1) + tr) / self.period
        if self._n + 1 < self.period:
            return None
        return (self._sum + tr) / self.period

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add a closed candle; the ATR, or None during warm-up."""
        prev = self._prev_close
        self._prev_close = close
        if prev is None:
            return None
        # true_range and _next inlined: this is the hot path.
        tr = high - low
        d = high - prev if high > prev else prev - high
        if d > tr:
            tr = d
        d = low - prev if low > prev else prev - low
        if d > tr:
            tr = d
        v = self.value
        n = self.period
        if v is not None:
            v = (v * (n - 1) + tr) / n
        elif self._n + 1 < n:
            self._sum += tr
        else:
            v = (self._sum + tr) / n
        self._n += 1
        self.value = v
        return v

    def peek(self, high: float, low: float, close: float) -> float | None:
        """The ATR if this candle closed now; the state is untouched."""
        prev = self._prev_close
        if prev is None:
            return None
        return self._next(true_range(high, low, prev))


class Adx:
    """Average directional index with +DI and −DI (Wilder, n periods), as TA-Lib has it.

    +DM/−DM and TR are Wilder *sums*: the first n−1 values added, then
    ``s − s/n + x``. DI = 100·DM/TR from the n-th move on; DX = 100·|+DI − −DI|/(+DI + −DI);
    ADX = mean of the first n DX, then ``(adx·(n−1) + dx)/n``. ``update`` returns
    (adx, plus_di, minus_di), each None during its warm-up.
    """

    __slots__ = (
        "_moves",
        "_pdm",
        "_mdm",
        "_tr",
        "_sum_dx",
        "_ph",
        "_pl",
        "_pc",
        "_adx",
        "_started",
        "period",
        "value",
    )

    def __init__(self, period: int) -> None:
        self.period = check_period(period, 2)
        self._moves = 0  # candles seen after the first
        self._pdm = 0.0
        self._mdm = 0.0
        self._tr = 0.0
        self._sum_dx = 0.0
        self._ph = self._pl = self._pc = 0.0  # the previous candle (from _moves >= 0)
        self._started = False
        self._adx: float | None = None
        self.value: AdxValues = _NO_ADX

    def _step(self, high: float, low: float) -> tuple[float, float, float]:
        """+DM, −DM and TR of a candle against the previous one."""
        up = high - self._ph
        down = self._pl - low
        pdm = mdm = 0.0
        if down > 0 and up < down:
            mdm = down
        elif up > 0 and up > down:
            pdm = up
        return pdm, mdm, true_range(high, low, self._pc)

    def _compute(
        self, high: float, low: float
    ) -> tuple[float, float, float, float | None, AdxValues]:
        """New (+DM, −DM, TR) sums and the outputs, for a candle past the first n−1 moves."""
        n = self.period
        pdm, mdm, tr = self._step(high, low)
        s_mdm = self._mdm - self._mdm / n + mdm
        s_pdm = self._pdm - self._pdm / n + pdm
        s_tr = self._tr - self._tr / n + tr
        dx: float | None = None
        plus_di = minus_di = 0.0
        # TA-Lib leaves DI at 0 and skips the DX of a move with no range at all.
        if s_tr != 0.0:
            minus_di = 100.0 * (s_mdm / s_tr)
            plus_di = 100.0 * (s_pdm / s_tr)
            total = minus_di + plus_di
            if total != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        adx = self._adx
        if adx is not None:
            if dx is not None:
                adx = (adx * (n - 1) + dx) / n
        elif self._moves + 1 == 2 * n - 1:  # the n-th DX: the first ADX is their mean
            adx = (self._sum_dx + dx if dx is not None else self._sum_dx) / n
        return s_pdm, s_mdm, s_tr, dx, (adx, plus_di, minus_di)

    def update(self, high: float, low: float, close: float) -> AdxValues:
        """Add a closed candle; (adx, plus_di, minus_di), each None during its warm-up."""
        if not self._started:
            self._started = True
            self._ph, self._pl, self._pc = high, low, close
            return _NO_ADX
        if self._moves < self.period - 1:
            pdm, mdm, tr = self._step(high, low)
            self._pdm += pdm
            self._mdm += mdm
            self._tr += tr
            self._moves += 1
            self._ph, self._pl, self._pc = high, low, close
            return _NO_ADX
        self._pdm, self._mdm, self._tr, dx, out = self._compute(high, low)
        if out[0] is None and dx is not None:
            self._sum_dx += dx  # still averaging the first n DX
        self._adx = out[0]
        self._moves += 1
        self._ph, self._pl, self._pc = high, low, close
        self.value = out
        return out

    def peek(self, high: float, low: float, close: float) -> AdxValues:
        """The values if this candle closed now; the state is untouched."""
        if not self._started or self._moves < self.period - 1:
            return _NO_ADX
        return self._compute(high, low)[4]


class Donchian:
    """Donchian channel: highest high, mid-point and lowest low of the last n candles."""

    __slots__ = ("_max", "_min", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = check_period(period)
        self._max = RollingMax(period)
        self._min = RollingMin(period)
        self.value: BandValues | None = None

    def update(self, high: float, low: float) -> BandValues | None:
        """Add a closed candle; (upper, middle, lower), or None during warm-up."""
        upper = self._max.update(high)
        lower = self._min.update(low)
        if upper is None or lower is None:
            return None
        value = (upper, (upper + lower) / 2.0, lower)
        self.value = value
        return value

    def peek(self, high: float, low: float) -> BandValues | None:
        """The channel if this candle closed now; the state is untouched."""
        upper = self._max.peek(high)
        lower = self._min.peek(low)
        if upper is None or lower is None:
            return None
        return (upper, (upper + lower) / 2.0, lower)
