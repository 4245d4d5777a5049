"""Live indicator and signal state of one (instrument, interval): O(1) per closed candle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptopulse.domain._untracked import untrack, untrack_tree
from cryptopulse.domain.indicators import IndicatorParams, IndicatorSet, IndicatorValues
from cryptopulse.domain.models import Candle
from cryptopulse.domain.signals import Signal, SignalEngine, SignalRules
from cryptopulse.store.analytics import SignalRow


@dataclass(slots=True)
class LiveSignals:
    instrument: str
    interval: str
    indicators: IndicatorSet = field(default_factory=IndicatorSet)
    engine: SignalEngine = field(default_factory=SignalEngine)
    last_time: int | None = None
    close: float | None = None
    values: IndicatorValues = field(default_factory=dict)
    signal: Signal | None = None

    def __post_init__(self) -> None:
        # A server keeps one per instrument and interval (8,400 at 1,400 instruments): it
        # and the objects below it hold numbers, strings and each other only, so they are
        # off the collector's lists (domain/_untracked.py); the indicators are already.
        untrack_tree(self, LIVE_STATE)

    def update(self, candle: Candle) -> tuple[Signal, bool] | None:
        """Advance on a closed candle: (signal, whether its state changed), or None when the
        candle is not newer than the last one seen (already applied)."""
        if self.last_time is not None and candle.open_time <= self.last_time:
            return None
        values = self.indicators.update(candle)
        signal = self.engine.update(candle, values)
        untrack(signal)  # kept here and by the engine until the next close
        changed = self.signal is None or signal.state != self.signal.state
        self.last_time = candle.open_time
        self.close = candle.close
        self.values = values
        self.signal = signal
        return signal, changed

    def row(self, signal: Signal) -> SignalRow:
        return SignalRow(
            self.instrument, self.interval, signal.time, signal.state, signal.strength, signal.rule
        )


# What a live series' state is made of, beyond the indicators (INDICATOR_STATE).
LIVE_STATE = (LiveSignals, IndicatorSet, IndicatorParams, SignalEngine, SignalRules, Signal)


def warm_state(
    instrument: str, interval: str, candles: Sequence[Candle]
) -> tuple[LiveSignals, list[SignalRow]]:
    """A state replayed over stored candles, and the signal changes on the way (a thread)."""
    state = LiveSignals(instrument, interval)
    rows = []
    for candle in candles:
        result = state.update(candle)
        if result is not None and result[1]:
            rows.append(state.row(result[0]))
    return state, rows
