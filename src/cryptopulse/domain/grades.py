"""Trader and investor grades: weighted cross-sectional percentiles of factor scores.

The formulas are written out in docs/grades.md; this module is their only implementation.
For each symbol, over the candles with `as_of - window < open_time <= as_of`:

- trend          close_last / mean(closes) - 1
- momentum       close_last / close_first - 1
- risk_adjusted  mean(r) / stdev(r), r the one-candle log returns (population stdev; 0 if flat)
- liquidity      trader: sum of quote volume; investor ("depth"): median quote volume
- drawdown       min over the window of close / running max close - 1 (0 is best)

Each factor becomes a mid-rank percentile (0..100) across the symbols that have it, and a
grade is the weighted sum of its factor percentiles. Same inputs, same grade.

The investor grade takes an optional on-chain activity factor (`onchain_activity`, the
growth of a token's on-chain activity, see `domain.onchain.activity_growth`): a symbol that
has it gets `ONCHAIN_INVESTOR_WEIGHTS` (0.10 taken from momentum), ranked among the symbols
that have it; a symbol without it keeps `INVESTOR_WEIGHTS`, so it is graded exactly as if no
symbol had on-chain data.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptopulse.domain.correlation import Series

__all__ = [
    "BANDS",
    "BandChange",
    "FACTORS",
    "INVESTOR_WEIGHTS",
    "ONCHAIN_FACTOR",
    "ONCHAIN_INVESTOR_WEIGHTS",
    "TRADER_WEIGHTS",
    "Grade",
    "GradeParams",
    "band",
    "band_changes",
    "compute_grades",
    "factor_scores",
    "percentiles",
]

FACTORS = ("trend", "momentum", "risk_adjusted", "liquidity", "drawdown")
TRADER_WEIGHTS: dict[str, float] = {
    "trend": 0.25,
    "momentum": 0.25,
    "risk_adjusted": 0.20,
    "liquidity": 0.15,
    "drawdown": 0.15,
}
INVESTOR_WEIGHTS: dict[str, float] = {
    "trend": 0.20,
    "momentum": 0.25,
    "risk_adjusted": 0.25,
    "liquidity": 0.15,
    "drawdown": 0.15,
}
# Symbols with on-chain data: activity growth takes 0.10 from momentum. Without data the
# 0.10 goes back to momentum (absent, not zero, so such a symbol's grade does not move).
ONCHAIN_FACTOR = "onchain_activity"
ONCHAIN_INVESTOR_WEIGHTS: dict[str, float] = {
    **INVESTOR_WEIGHTS,
    "momentum": 0.15,
    ONCHAIN_FACTOR: 0.10,
}
BANDS = ("very weak", "weak", "neutral", "strong", "very strong")  # 0-20-40-60-80-100

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class GradeParams:
    interval_ms: int = 300_000
    trader_window_ms: int = 24 * HOUR_MS
    investor_window_ms: int = 7 * 24 * HOUR_MS
    # A symbol needs candles covering this share of a window to be graded on it.
    min_coverage: float = 0.5


@dataclass(frozen=True, slots=True)
class Grade:
    symbol: str
    time: int  # the as-of open time
    trader: float | None
    investor: float | None
    # kind -> factor -> (raw value, percentile)
    factors: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


def band(grade: float) -> int:
    """0..4 for the bands 0-20, 20-40, 40-60, 60-80, 80-100 (100 is in the top band)."""
    return min(int(grade // 20), 4)


def _drawdown(closes: list[float]) -> float:
    peak = closes[0]
    worst = 0.0
    for c in closes:
        peak = max(peak, c)
        worst = min(worst, c / peak - 1.0)
    return worst


def _risk_adjusted(closes: list[float]) -> float:
    returns = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]
    if len(returns) < 2:
        return 0.0
    sd = statistics.pstdev(returns)
    return statistics.fmean(returns) / sd if sd > 0 else 0.0


def factor_scores(
    series: Series, as_of: int, window_ms: int, params: GradeParams, *, depth: bool
) -> dict[str, float] | None:
    """Raw factor values of one symbol over one window, or None when it is not covered."""
    lo, hi = series.span(as_of - window_ms, as_of)
    closes = list(series.closes[lo:hi])
    volumes = list(series.volumes[lo:hi])
    needed = max(3, math.ceil(params.min_coverage * window_ms / params.interval_ms))
    if len(closes) < needed or min(closes) <= 0:
        return None
    return {
        "trend": closes[-1] / statistics.fmean(closes) - 1.0,
        "momentum": closes[-1] / closes[0] - 1.0,
        "risk_adjusted": _risk_adjusted(closes),
        "liquidity": statistics.median(volumes) if depth else math.fsum(volumes),
        "drawdown": _drawdown(closes),
    }


def percentiles(values: Mapping[str, float]) -> dict[str, float]:
    """Mid-rank percentile of each value among all: 100 x (below + (equal - 1) / 2) / (n - 1).

    The lowest value gets 0, the highest 100, ties share the mean of their ranks; a
    universe of one gets 50.
    """
    n = len(values)
    if n == 1:
        return dict.fromkeys(values, 50.0)
    ordered = sorted(values.values())
    out: dict[str, float] = {}
    for name, value in values.items():
        below = _count_below(ordered, value)
        equal = _count_below(ordered, value, inclusive=True) - below
        out[name] = 100.0 * (below + (equal - 1) / 2) / (n - 1)
    return out


def _count_below(ordered: list[float], value: float, *, inclusive: bool = False) -> int:
    return bisect_right(ordered, value) if inclusive else bisect_left(ordered, value)


def _grade_kind(
    raw: dict[str, dict[str, float]],
    weights: Mapping[str, float],
    extra: Mapping[str, float] | None = None,
    extra_weights: Mapping[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, tuple[float, float]]]]:
    """Grades of one kind for every symbol with scores, and the per-factor detail.

    `extra` is the optional factor (symbol -> value), ranked only among the scored symbols
    that have it; those symbols are weighted by `extra_weights`, the others by `weights`.
    """
    ranks = {f: percentiles({s: scores[f] for s, scores in raw.items()}) for f in weights}
    extra = {s: v for s, v in (extra or {}).items() if s in raw and math.isfinite(v)}
    if extra and extra_weights is not None:
        ranks[ONCHAIN_FACTOR] = percentiles(extra)
    grades: dict[str, float] = {}
    detail: dict[str, dict[str, tuple[float, float]]] = {}
    for symbol, scores in raw.items():
        use = weights
        if symbol in extra and extra_weights is not None:
            use, scores = extra_weights, {**scores, ONCHAIN_FACTOR: extra[symbol]}
        grades[symbol] = math.fsum(w * ranks[f][symbol] for f, w in use.items())
        detail[symbol] = {f: (scores[f], ranks[f][symbol]) for f in use}
    return grades, detail


def compute_grades(
    universe: Mapping[str, Series],
    as_of: int,
    params: GradeParams | None = None,
    onchain: Mapping[str, float] | None = None,
) -> dict[str, Grade]:
    """Grades of every symbol in `universe` (symbol -> its chosen instrument's candles).

    `onchain` holds the on-chain activity factor of the symbols that have one (symbol ->
    activity growth at `as_of`); it joins their investor grade only.
    """
    params = params or GradeParams()
    kinds = {
        "trader": (params.trader_window_ms, TRADER_WEIGHTS, False),
        "investor": (params.investor_window_ms, INVESTOR_WEIGHTS, True),
    }
    values: dict[str, dict[str, float]] = {}
    details: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for kind, (window, weights, depth) in kinds.items():
        raw = {}
        for symbol, series in universe.items():
            scores = factor_scores(series, as_of, window, params, depth=depth)
            if scores is not None:
                raw[symbol] = scores
        if kind == "investor":
            values[kind], details[kind] = _grade_kind(
                raw, weights, onchain, ONCHAIN_INVESTOR_WEIGHTS
            )
        else:
            values[kind], details[kind] = _grade_kind(raw, weights)
    return {
        symbol: Grade(
            symbol,
            as_of,
            values["trader"].get(symbol),
            values["investor"].get(symbol),
            {k: details[k][symbol] for k in kinds if symbol in details[k]},
        )
        for symbol in sorted(universe)
    }


@dataclass(frozen=True, slots=True)
class BandChange:
    symbol: str
    kind: str  # "trader" | "investor"
    previous: float
    grade: float
    from_band: int
    to_band: int
    time: int


def band_changes(previous: Mapping[str, Grade], current: Mapping[str, Grade]) -> list[BandChange]:
    """Grades that moved across a band boundary (0-20-40-60-80-100) since `previous`."""
    changes = []
    for symbol, now in sorted(current.items()):
        before = previous.get(symbol)
        if before is None:
            continue
        for kind in ("trader", "investor"):
            old, new = getattr(before, kind), getattr(now, kind)
            if old is not None and new is not None and band(old) != band(new):
                changes.append(BandChange(symbol, kind, old, new, band(old), band(new), now.time))
    return changes
