"""The steady state of every indicator, inlined for `IndicatorSet` (the hot path).

A profile of `IndicatorSet.update` showed most of its time in ~45 small method calls.
Once an indicator is warmed up, its step is a few float operations, so these functions do
that step in place on the indicator objects' own state and leave warm-up (and the rare
paths) to the objects' methods. With ``commit`` false they compute the same values and
write nothing: that is `peek`. Every expression mirrors the classes' own order of
operations, so both paths give the same bits (tests/domain/test_indicators.py checks it
against the classes' results, TA-Lib and numpy).
"""

from __future__ import annotations

from math import log, sqrt

from cryptopulse.domain._indicators_ma import Bollinger, Ema, Sma, Wma
from cryptopulse.domain._indicators_momentum import Macd, Rsi, Stochastic
from cryptopulse.domain._indicators_range import Adx, Atr, Donchian
from cryptopulse.domain._indicators_volume import Obv, Volatility, Vwap

Out = dict[str, float | None]


def sma_step(s: Sma, x: float, commit: bool) -> float | None:
    """`Sma.update` (commit) or `Sma.peek`, steady state inlined."""
    if s.value is None:
        return s.update(x) if commit else s.peek(x)
    total = s._partial + x
    value = total / s.period
    if commit:
        buf = s._buf
        i = s._i
        buf[i] = x
        i += 1
        if i == s.period:
            i = 0
        s._i = i
        s._partial = total - buf[i]
        s.value = value
    return value


def ema_step(e: Ema, x: float, commit: bool) -> float | None:
    """`Ema.update` (commit) or `Ema.peek`, steady state inlined."""
    v = e.value
    if v is None:
        return e.update(x) if commit else e.peek(x)
    v = (x - v) * e.k + v
    if commit:
        e.value = v
    return v


def averages(
    sma: Sma, ema_fast: Ema, ema_slow: Ema, wma: Wma, x: float, out: Out, commit: bool
) -> None:
    """sma, ema_fast, ema_slow, wma."""
    out["sma"] = sma_step(sma, x, commit)
    out["ema_fast"] = ema_step(ema_fast, x, commit)
    out["ema_slow"] = ema_step(ema_slow, x, commit)
    if wma.value is None:
        out["wma"] = wma.update(x) if commit else wma.peek(x)
        return
    total = wma._sum + x * wma.period
    value = total / wma._divider
    if commit:
        buf = wma._buf
        i = wma._i
        sub = wma._sub + x
        sub -= buf[i]
        buf[i] = x
        wma._i = i + 1 if i + 1 < wma.period else 0
        wma._sub = sub
        wma._sum = total - sub
        wma.value = value
    out["wma"] = value


def momentum(rsi: Rsi, macd: Macd, x: float, out: Out, commit: bool) -> None:
    """rsi, macd, macd_signal, macd_hist."""
    if rsi.value is None:
        out["rsi"] = rsi.update(x) if commit else rsi.peek(x)
    else:
        n = rsi.period
        diff = x - rsi._prev  # type: ignore[operator]  # set once rsi has a value
        loss = rsi._loss * (n - 1)
        gain = rsi._gain * (n - 1)
        if diff < 0:
            loss -= diff
        else:
            gain += diff
        loss /= n
        gain /= n
        total = gain + loss
        value = 100.0 * (gain / total) if total != 0.0 else 0.0
        if commit:
            rsi._prev, rsi._gain, rsi._loss, rsi.value = x, gain, loss, value
        out["rsi"] = value
    signal = macd._signal
    if signal.value is None:
        out["macd"], out["macd_signal"], out["macd_hist"] = (
            macd.update(x) if commit else macd.peek(x)
        )
        return
    # All three EMAs are seeded once the signal is: their steady step, inlined.
    f, sl = macd._fast, macd._slow
    fast = (x - f.value) * f.k + f.value  # type: ignore[operator]
    slow = (x - sl.value) * sl.k + sl.value  # type: ignore[operator]
    line = fast - slow
    sig = (line - signal.value) * signal.k + signal.value
    if commit:
        f.value, sl.value, signal.value = fast, slow, sig
    out["macd"] = line
    out["macd_signal"] = sig
    out["macd_hist"] = line - sig


def dispersion(bb: Bollinger, vol: Volatility, x: float, out: Out, commit: bool) -> None:
    """bb_upper, bb_middle, bb_lower, volatility."""
    var = bb._var
    if var.count < bb.period:
        bands = bb.update(x) if commit else bb.peek(x)
        out["bb_upper"], out["bb_middle"], out["bb_lower"] = bands or (None, None, None)
    else:
        total = bb._partial + x
        if commit:
            m2 = var.update(x)
            bb._partial = total - var._buf[var._i]
        else:
            m2 = var.peek(x)
        mean = total / bb.period
        dev = sqrt(m2 / bb.period) * bb.k if m2 > 0.0 else 0.0
        out["bb_upper"], out["bb_middle"], out["bb_lower"] = mean + dev, mean, mean - dev
    var = vol._var
    prev = vol._prev
    if prev is None or var.count < vol.period:
        out["volatility"] = vol.update(x) if commit else vol.peek(x)
        return
    r = log(x / prev) if x > 0.0 and prev > 0.0 else 0.0
    if commit:
        vol._prev = x
        m2 = var.update(r)
    else:
        m2 = var.peek(r)
    value = sqrt(m2 / (vol.period - 1)) if m2 > 0.0 else 0.0
    if commit:
        vol.value = value
    out["volatility"] = value


def ranges(atr: Atr, adx: Adx, h: float, lo: float, c: float, out: Out, commit: bool) -> None:
    """atr, adx, plus_di, minus_di: one true range for both once they are warm."""
    if atr.value is None or adx._adx is None:
        out["atr"] = atr.update(h, lo, c) if commit else atr.peek(h, lo, c)
        out["adx"], out["plus_di"], out["minus_di"] = (
            adx.update(h, lo, c) if commit else adx.peek(h, lo, c)
        )
        return
    prev = adx._pc  # == atr._prev_close: both saw every candle
    tr = h - lo
    d = h - prev if h > prev else prev - h
    if d > tr:
        tr = d
    d = lo - prev if lo > prev else prev - lo
    if d > tr:
        tr = d
    n = atr.period
    value = (atr.value * (n - 1) + tr) / n
    n = adx.period
    up = h - adx._ph
    down = adx._pl - lo
    pdm = mdm = 0.0
    if down > 0 and up < down:
        mdm = down
    elif up > 0 and up > down:
        pdm = up
    s_mdm = adx._mdm - adx._mdm / n + mdm
    s_pdm = adx._pdm - adx._pdm / n + pdm
    s_tr = adx._tr - adx._tr / n + tr
    adx_value = adx._adx
    plus_di = minus_di = 0.0
    if s_tr != 0.0:
        minus_di = 100.0 * (s_mdm / s_tr)
        plus_di = 100.0 * (s_pdm / s_tr)
        total = minus_di + plus_di
        if total != 0.0:
            dx = 100.0 * (abs(minus_di - plus_di) / total)
            adx_value = (adx_value * (n - 1) + dx) / n
    if commit:
        atr._prev_close, atr.value = c, value
        adx._pdm, adx._mdm, adx._tr, adx._adx = s_pdm, s_mdm, s_tr, adx_value
        adx._ph, adx._pl, adx._pc = h, lo, c
        adx._moves += 1
    out["atr"] = value
    out["adx"], out["plus_di"], out["minus_di"] = adx_value, plus_di, minus_di


def channels(
    stoch: Stochastic, donchian: Donchian, h: float, lo: float, c: float, out: Out, commit: bool
) -> None:
    """stoch_k, stoch_d, donchian_upper, donchian_middle, donchian_lower."""
    if stoch._d.value is None:
        out["stoch_k"], out["stoch_d"] = stoch.update(h, lo, c) if commit else stoch.peek(h, lo, c)
    else:
        if commit:
            highest = stoch._high.update(h)
            lowest = stoch._low.update(lo)
        else:
            highest = stoch._high.peek(h)
            lowest = stoch._low.peek(lo)
        assert highest is not None and lowest is not None  # warm: both are floats
        diff = (highest - lowest) / 100.0
        k = sma_step(stoch._k, (c - lowest) / diff if diff != 0.0 else 0.0, commit)
        out["stoch_k"] = k
        out["stoch_d"] = sma_step(stoch._d, k, commit)  # type: ignore[arg-type]
    if commit:
        upper = donchian._max.update(h)
        lower = donchian._min.update(lo)
    else:
        upper = donchian._max.peek(h)
        lower = donchian._min.peek(lo)
    if upper is not None and lower is not None:
        out["donchian_upper"] = upper
        out["donchian_middle"] = (upper + lower) / 2.0
        out["donchian_lower"] = lower


def volume(
    obv: Obv, vwap: Vwap, t: int, h: float, lo: float, c: float, v: float, out: Out, commit: bool
) -> None:
    """obv, vwap."""
    value = obv.value
    prev = obv._prev
    if value is None or prev is None:
        value = v
    elif c > prev:
        value += v
    elif c < prev:
        value -= v
    session = t // vwap.session_ms
    if session == vwap._session:
        pv = vwap._pv + (h + lo + c) / 3.0 * v
        vol = vwap._v + v
    else:
        pv = 0.0 + (h + lo + c) / 3.0 * v
        vol = 0.0 + v
    if commit:
        obv._prev, obv.value = c, value
        vwap._session, vwap._pv, vwap._v = session, pv, vol
    out["obv"] = value
    out["vwap"] = pv / vol if vol > 0.0 else None
