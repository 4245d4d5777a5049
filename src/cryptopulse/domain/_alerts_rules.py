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
# Per kind: the parameters it takes, each "str", "num" or "int"; `_REQUIRED` must be given.
_SPEC: dict[str, dict[str, str]] = {
    "price_cross": {"instrument": "str", "level": "num", "direction": "str"},
    "pct_move": {
        "instrument": "str",
        "percent": "num",
        "window_ms": "int",
        "direction": "str",
        "interval": "str",
    },
    "volume_spike": {"instrument": "str", "z": "num", "window": "int", "interval": "str"},
    "signal_change": {"instrument": "str", "interval": "str", "to": "str"},
    "grade_band": {"symbol": "str", "grade": "str", "direction": "str"},
    "grade_move": {"symbol": "str", "grade": "str", "points": "num"},
    "level_break": {"instrument": "str", "interval": "str", "side": "str", "lookback": "int"},
    "sector_rotation": {"sector": "str", "top": "int", "direction": "str"},
    "correlation_breakdown": {"sector": "str", "symbol": "str"},
    "large_transfer": {"chain": "str", "token": "str", "min_amount": "num", "direction": "str"},
}
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
# Inclusive bounds of numeric parameters (a number must also be > 0).
_BOUNDS: dict[str, tuple[float, float]] = {
    "level": (0.0, 1e15),
    "percent": (0.0, 10_000.0),
    "window_ms": (60_000, 30 * 86_400_000),
    "z": (0.0, 1_000.0),
    "window": (2, 10_000),
    "points": (0.0, 100.0),
    "lookback": (20, 5_000),
    "top": (1, 1_000),
    "min_amount": (0.0, 1e30),
}
_CHOICES: dict[str, dict[str, frozenset[str]]] = {
    "direction": {
        "sector_rotation": frozenset({"enters", "leaves", "either"}),
        "large_transfer": frozenset({"either", "to_exchange", "from_exchange"}),
        "": _DIRECTIONS,
    },
    "interval": {"": _INTERVALS},
    "grade": {"": frozenset({"trader", "investor"})},
    "to": {"": frozenset({"bullish", "bearish", "neutral", "any"})},
    "side": {"": frozenset({"support", "resistance", "either"})},
}
_MAX_TEXT = 100


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


def _check_value(kind: str, name: str, kind_of: str, value: Any) -> None:
    if kind_of == "str":
        if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
            raise RuleError(name, f"must be a string of 1 to {_MAX_TEXT} characters")
        choices = _CHOICES.get(name)
        if choices is not None:
            allowed = choices.get(kind, choices[""])
            if value not in allowed:
                raise RuleError(name, f"must be one of {', '.join(sorted(allowed))}")
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or (kind_of == "int" and not float(value).is_integer()):
        raise RuleError(name, "must be an integer" if kind_of == "int" else "must be a number")
    low, high = _BOUNDS[name]
    if not (value > 0 and low <= value <= high):
        raise RuleError(name, f"must be > 0 and within {low:g}..{high:g}")


def check_params(kind: str, params: dict[str, Any]) -> None:
    """Raise `RuleError` unless `params` are complete and sane for `kind`."""
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}")
    spec = _SPEC[kind]
    for name in _REQUIRED[kind]:
        if params.get(name) is None:
            raise RuleError(name, f"required for {kind}")
    for name, value in params.items():
        kind_of = spec.get(name)
        if kind_of is None:
            raise RuleError(name, f"not a parameter of {kind}")
        if value is not None:
            _check_value(kind, name, kind_of, value)
