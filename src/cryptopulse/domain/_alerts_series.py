"""Closed-candle alert rules: % move within a window, volume spike (z-score), and
support/resistance breaks. One `CandleSeries` per (instrument, interval) that has rules
keeps just the history those rules need; levels are found once per candle and shared.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from cryptopulse.domain._alerts_rules import Rule
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.levels import Level, find_levels
from cryptopulse.domain.models import Candle

__all__ = ["CandleSeries"]

DEFAULT_VOLUME_WINDOW = 20
DEFAULT_Z = 3.0
DEFAULT_LOOKBACK = 200
_MIN_LEVEL_CANDLES = 20

Fire = Callable[[Rule, int, dict[str, Any]], None]


def _edge(rule: Rule, condition: bool) -> bool:
    """True when `condition` turns true (it was false, or unknown, at the last candle)."""
    was = rule.state.get("on", False)
    rule.state["on"] = condition
    return condition and not was


class CandleSeries:
    """The closed candles of one (instrument, interval) that its rules need."""

    def __init__(self, instrument: str, interval: str) -> None:
        self.instrument = instrument
        self.interval = interval
        self.interval_ms = INTERVALS[interval]
        self.rules: dict[str, Rule] = {}
        self.candles: deque[Candle] = deque(maxlen=2)

    def add_rule(self, rule: Rule) -> None:
        self.rules[rule.id] = rule
        self._resize()

    def remove_rule(self, rule_id: str) -> None:
        self.rules.pop(rule_id, None)
        self._resize()

    def _need(self, rule: Rule) -> int:
        if rule.kind == "pct_move":
            return math.ceil(int(rule.param("window_ms")) / self.interval_ms) + 1
        if rule.kind == "volume_spike":
            return int(rule.param("window", DEFAULT_VOLUME_WINDOW)) + 1
        return int(rule.param("lookback", DEFAULT_LOOKBACK)) + 1

    def _resize(self) -> None:
        need = max((self._need(r) for r in self.rules.values()), default=2)
        if need != self.candles.maxlen:
            self.candles = deque(self.candles, maxlen=max(need, 2))

    def on_candle(self, candle: Candle, fire: Fire) -> None:
        """Evaluate every rule on a newly closed candle, then remember the candle."""
        history = self.candles
        if history and candle.open_time <= history[-1].open_time:
            return  # a replayed or late close: evaluated already
        levels: list[Level] | None = None
        for rule in list(self.rules.values()):
            if rule.kind == "pct_move":
                self._pct_move(rule, candle, fire)
            elif rule.kind == "volume_spike":
                self._volume_spike(rule, candle, fire)
            elif rule.kind == "level_break":
                if levels is None:
                    levels = self._levels()
                self._level_break(rule, candle, levels, fire)
        history.append(candle)

    def _pct_move(self, rule: Rule, candle: Candle, fire: Fire) -> None:
        window = int(rule.param("window_ms"))
        start = candle.open_time + self.interval_ms - window
        base = candle.open
        for past in self.candles:  # the open of the first candle inside the window
            if past.open_time >= start:
                base = past.open
                break
        if base <= 0:
            return
        move = (candle.close / base - 1.0) * 100.0
        threshold = float(rule.param("percent"))
        direction = rule.param("direction", "either")
        hit = (direction != "down" and move >= threshold) or (
            direction != "up" and move <= -threshold
        )
        if _edge(rule, hit):
            data = {"instrument": self.instrument, "interval": self.interval, "window_ms": window}
            data |= {"percent": move, "from": base, "to": candle.close}
            fire(rule, candle.open_time + self.interval_ms, data)

    def _volume_spike(self, rule: Rule, candle: Candle, fire: Fire) -> None:
        window = int(rule.param("window", DEFAULT_VOLUME_WINDOW))
        past = [c.volume for c in list(self.candles)[-window:]]
        if len(past) < window:
            rule.state["on"] = False
            return
        mean = sum(past) / window
        std = math.sqrt(sum((v - mean) ** 2 for v in past) / window)
        z = (candle.volume - mean) / std if std > 0 else (math.inf if candle.volume > mean else 0)
        threshold = float(rule.param("z", DEFAULT_Z))
        if _edge(rule, z >= threshold):
            data = {
                "instrument": self.instrument,
                "interval": self.interval,
                "volume": candle.volume,
            }
            data |= {"mean": mean, "z": z if math.isfinite(z) else None, "window": window}
            fire(rule, candle.open_time + self.interval_ms, data)

    def _levels(self) -> list[Level]:
        if len(self.candles) < _MIN_LEVEL_CANDLES:
            return []
        return find_levels(list(self.candles))

    def _level_break(self, rule: Rule, candle: Candle, levels: list[Level], fire: Fire) -> None:
        if not self.candles:
            return
        before = self.candles[-1].close
        side = rule.param("side", "either")
        for level in sorted(levels, key=lambda lv: lv.price):
            broke_up = level.kind == "resistance" and before <= level.price < candle.close
            broke_down = level.kind == "support" and before >= level.price > candle.close
            if (broke_up and side != "support") or (broke_down and side != "resistance"):
                data: dict[str, Any] = {"instrument": self.instrument, "interval": self.interval}
                data |= {"level": level.price, "side": level.kind, "touches": level.touches}
                data |= {"close": candle.close, "previous_close": before}
                fire(rule, candle.open_time + self.interval_ms, data)
                return
