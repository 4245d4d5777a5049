"""Alert rules and firings: the records, the rule kinds and their parameters (pure).

A rule is owned by one account and has a kind with parameters (docs/alerts.md lists them),
a cooldown and a mode: one-shot rules deactivate when they fire, recurring ones fire again
once the cooldown has passed *and* their condition has become false and true again (every
rule is edge-triggered: a price that stays above a level does not fire on every trade).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CANDLE_KINDS",
    "KINDS",
    "Firing",
    "Rule",
    "RuleError",
    "check_params",
]

KINDS = (
    "price_cross",
    "pct_move",
    "volume_spike",
    "signal_change",
    "grade_band",
    "grade_move",
    "level_break",
    "sector_rotation",
    "correlation_breakdown",
    "large_transfer",
)
# Kinds evaluated on closed candles of (instrument, interval).
CANDLE_KINDS = frozenset({"pct_move", "volume_spike", "level_break"})

_DIRECTIONS = frozenset({"up", "down", "either"})
_INTERVALS = frozenset({"1m", "5m", "15m", "1h", "4h", "1d"})
_REQUIRED: dict[str, tuple[str, ...]] = {
    "price_cross": ("instrument", "level"),
    "pct_move": ("instrument", "percent", "window_ms"),
    "volume_spike": ("instrument",),
    "signal_change": ("instrument",),
    "grade_band": ("symbol",),
    "grade_move": ("symbol", "points"),
    "level_break": ("instrument",),
    "sector_rotation": ("sector", "top"),
    "correlation_breakdown": (),
    "large_transfer": ("chain",),
}


class RuleError(ValueError):
    """A rule's parameters are invalid; `field` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(slots=True)
class Rule:
    """One alert rule with its runtime state (`last_fired`, edge flags, references)."""

    id: str
    account: str
    kind: str
    params: dict[str, Any]
    cooldown_ms: int = 0
    one_shot: bool = False
    active: bool = True  # False: paused, or a one-shot that has fired
    last_fired: int | None = None
    # Edge-trigger flags and references (grade at the last firing, ...), kept in memory.
    state: dict[str, Any] = field(default_factory=dict)

    def ready(self, time: int) -> bool:
        """Active and out of its cooldown at `time` (ms, market time)."""
        last = self.last_fired
        return self.active and (last is None or time - last >= self.cooldown_ms)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule fired at `time` (ms); `data` says what happened (JSON-ready)."""

    rule_id: str
    account: str
    kind: str
    time: int
    data: dict[str, Any]


def _positive(params: dict[str, Any], name: str) -> None:
    value = params.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RuleError(name, "must be a number > 0")


def _choice(params: dict[str, Any], name: str, choices: frozenset[str]) -> None:
    value = params.get(name)
    if value is not None and value not in choices:
        raise RuleError(name, f"must be one of {', '.join(sorted(choices))}")


def check_params(kind: str, params: dict[str, Any]) -> None:
    """Raise `RuleError` unless `params` are complete and sane for `kind`."""
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}")
    for name in _REQUIRED[kind]:
        if params.get(name) is None:
            raise RuleError(name, f"required for {kind}")
    for name in ("level", "percent", "window_ms", "z", "points", "min_amount", "top", "window"):
        _positive(params, name)
    _choice(params, "interval", _INTERVALS)
    if kind in ("price_cross", "pct_move", "grade_band"):
        _choice(params, "direction", _DIRECTIONS)
    if kind == "sector_rotation":
        _choice(params, "direction", frozenset({"enters", "leaves", "either"}))
    if kind == "large_transfer":
        _choice(params, "direction", frozenset({"either", "to_exchange", "from_exchange"}))
    if kind in ("grade_band", "grade_move"):
        _choice(params, "grade", frozenset({"trader", "investor"}))
    if kind == "signal_change":
        _choice(params, "to", frozenset({"bullish", "bearish", "neutral", "any"}))
    if kind == "level_break":
        _choice(params, "side", frozenset({"support", "resistance", "either"}))
