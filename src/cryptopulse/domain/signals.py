"""Trading signals from indicator values, and how following them would have done.

A signal is a *state* per instrument and interval: ``bullish``, ``bearish`` or ``neutral``,
with a strength in [0, 1] and the rule that decided it. Rules, first match wins
(docs/signals.md has the reasoning and the thresholds):

1. ``breakout``: the close leaves the Donchian channel of the candles before it.
2. ``trend``: the fast EMA is above (below) the slow EMA, ADX confirms a trend and the
   directional indicators agree.
3. ``momentum``: MACD is above (below) its signal line and RSI is above (below) 50.
4. otherwise ``neutral`` with rule ``none``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptopulse.domain.indicators import IndicatorValues
from cryptopulse.domain.models import Candle

__all__ = [
    "Signal",
    "SignalEngine",
    "SignalPerformance",
    "SignalRules",
    "SignalState",
    "evaluate_signal",
    "signal_performance",
]

SignalState = Literal["bullish", "bearish", "neutral"]


@dataclass(frozen=True)
class Signal:
    """The signal after the candle that opened at `time` (ms); `rule` names what fired."""

    state: SignalState
    strength: float
    rule: str
    time: int


@dataclass(frozen=True)
class SignalRules:
    """Thresholds of the rules (defaults in docs/signals.md)."""

    adx_trend: float = 20.0  # ADX at or above this confirms a trend
    adx_full: float = 50.0  # ADX at which trend strength reaches 1
    rsi_mid: float = 50.0
    rsi_span: float = 30.0  # RSI distance from 50 at which momentum strength reaches 1


# Frozen: one instance serves every engine that takes the defaults.
_DEFAULT_RULES = SignalRules()


def _clamp(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _breakout(
    close: float, atr: float | None, upper: float | None, lower: float | None, time: int
) -> Signal | None:
    if upper is None or lower is None:
        return None
    if close > upper:
        excess = (close - upper) / atr if atr else 0.0
        return Signal("bullish", _clamp(0.5 + 0.5 * excess), "breakout", time)
    if close < lower:
        excess = (lower - close) / atr if atr else 0.0
        return Signal("bearish", _clamp(0.5 + 0.5 * excess), "breakout", time)
    return None


def _trend(v: IndicatorValues, rules: SignalRules, time: int) -> Signal | None:
    fast, slow, adx = v.get("ema_fast"), v.get("ema_slow"), v.get("adx")
    plus_di, minus_di = v.get("plus_di"), v.get("minus_di")
    if fast is None or slow is None or adx is None or plus_di is None or minus_di is None:
        return None
    if adx < rules.adx_trend:
        return None
    strength = _clamp(adx / rules.adx_full)
    if fast > slow and plus_di > minus_di:
        return Signal("bullish", strength, "trend", time)
    if fast < slow and plus_di < minus_di:
        return Signal("bearish", strength, "trend", time)
    return None


def _momentum(v: IndicatorValues, rules: SignalRules, time: int) -> Signal | None:
    rsi, macd, signal = v.get("rsi"), v.get("macd"), v.get("macd_signal")
    if rsi is None or macd is None or signal is None:
        return None
    strength = _clamp(abs(rsi - rules.rsi_mid) / rules.rsi_span)
    if macd > signal and rsi > rules.rsi_mid:
        return Signal("bullish", strength, "momentum", time)
    if macd < signal and rsi < rules.rsi_mid:
        return Signal("bearish", strength, "momentum", time)
    return None


def evaluate_signal(
    candle: Candle,
    values: IndicatorValues,
    prev_channel: tuple[float | None, float | None] = (None, None),
    rules: SignalRules | None = None,
) -> Signal:
    """The signal for `candle` given its indicator values and the Donchian channel
    (upper, lower) as it stood after the previous candle. Pure."""
    r = rules if rules is not None else _DEFAULT_RULES
    time = candle.open_time
    return (
        _breakout(candle.close, values.get("atr"), prev_channel[0], prev_channel[1], time)
        or _trend(values, r, time)
        or _momentum(values, r, time)
        or Signal("neutral", 0.0, "none", time)
    )


class SignalEngine:
    """The signal of one instrument and interval, fed candle by candle with their values.

    ``update`` takes a closed candle and the values `IndicatorSet.update` gave for it;
    ``peek`` the open candle and `IndicatorSet.peek` values, and changes nothing.
    """

    __slots__ = ("_channel", "last", "rules")

    def __init__(self, rules: SignalRules | None = None) -> None:
        self.rules = rules if rules is not None else _DEFAULT_RULES
        self._channel: tuple[float | None, float | None] = (None, None)
        self.last: Signal | None = None

    def update(self, candle: Candle, values: IndicatorValues) -> Signal:
        """The signal after a closed candle; remembers its channel for the next one."""
        signal = evaluate_signal(candle, values, self._channel, self.rules)
        self._channel = (values.get("donchian_upper"), values.get("donchian_lower"))
        self.last = signal
        return signal

    def peek(self, candle: Candle, values: IndicatorValues) -> Signal:
        """The signal if the open candle closed now; the state is untouched."""
        return evaluate_signal(candle, values, self._channel, self.rules)


@dataclass(frozen=True)
class SignalPerformance:
    """Following the signals (long when bullish, short when bearish, flat when neutral,
    from the candle after each signal) against holding, over [window_start, window_end]."""

    strategy_return: float
    hold_return: float
    hit_rate: float | None  # share of positions that made money; None without positions
    signals: int  # positions opened (changes to bullish or bearish)
    window_start: int
    window_end: int


_POSITION = {"bullish": 1, "bearish": -1, "neutral": 0}


def signal_performance(candles: Sequence[Candle], signals: Sequence[Signal]) -> SignalPerformance:
    """Return of following `signals` over `candles` (time order) against buy-and-hold.

    A signal applies from the candle after the one it was made on and holds until the next
    signal, so both a signal per candle and a list of changes work. Returns compound per
    candle; a short earns −r. Signals at times with no candle are ignored. The hit rate
    counts the positions held for at least one candle.
    """
    if not candles:
        raise ValueError("signal_performance needs at least one candle")
    by_time = {s.time: _POSITION[s.state] for s in signals}
    growth = trade_growth = 1.0
    position = held = opened = judged = hits = 0
    prev_close = candles[0].close
    for candle in candles:
        close = candle.close
        if position:
            step = 1.0 + position * (close / prev_close - 1.0) if prev_close > 0.0 else 1.0
            growth *= step
            trade_growth *= step
            held += 1
        prev_close = close
        new = by_time.get(candle.open_time, position)
        if new != position:
            if held:
                judged += 1
                hits += trade_growth > 1.0
            opened += new != 0
            position, trade_growth, held = new, 1.0, 0
    if held:
        judged += 1
        hits += trade_growth > 1.0
    first = candles[0].close
    return SignalPerformance(
        strategy_return=growth - 1.0,
        hold_return=candles[-1].close / first - 1.0 if first > 0.0 else 0.0,
        hit_rate=hits / judged if judged else None,
        signals=opened,
        window_start=candles[0].open_time,
        window_end=candles[-1].open_time,
    )
