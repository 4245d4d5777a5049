"""Sector indices, performance, relative-strength ranks, breadth and correlation breakdowns.

Formulas (docs/sectors.md): members are the registry's tokens in the sector that have a
chosen instrument. At each open time t of any member, the members with a close at t and
an earlier close contribute the return r_i = close_t / previous close - 1, and

    equal_t = equal_{t-1} x (1 + mean(r_i))
    cap_t   = cap_{t-1}   x (1 + sum(w_i r_i) / sum(w_i)),  w_i = circulating_i x previous close_i

both starting at 100 at the first open time. A member without a circulating supply is left
out of the cap-weighted index only.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from cryptopulse.domain.correlation import (
    Returns,
    Series,
    correlation,
    correlation_matrix,
    log_returns,
)

__all__ = [
    "PERIODS",
    "IndexSeries",
    "SectorParams",
    "SectorSnapshot",
    "breadth",
    "compute_sectors",
    "ema",
    "leave_one_out_correlations",
    "performance",
    "rs_ranks",
    "sector_index",
]

HOUR_MS = 3_600_000
PERIODS: dict[str, int] = {
    "1h": HOUR_MS,
    "24h": 24 * HOUR_MS,
    "7d": 7 * 24 * HOUR_MS,
    "30d": 30 * 24 * HOUR_MS,
}
RANK_PERIOD = "24h"


@dataclass(frozen=True, slots=True)
class SectorParams:
    interval_ms: int = 300_000
    correlation_window_ms: int = 24 * HOUR_MS
    breakdown_threshold: float = 0.3
    ema_period: int = 20


@dataclass(frozen=True, slots=True)
class IndexSeries:
    times: list[int]
    equal: list[float]
    cap: list[float] | None  # None when no member has a circulating supply

    def value_at(self, time: int) -> tuple[float, float | None] | None:
        """Index levels at the last point at or before `time`, or None before the first."""
        i = bisect_right(self.times, time) - 1
        if i < 0:
            return None
        return self.equal[i], (self.cap[i] if self.cap is not None else None)


def _step_return(
    returns: dict[str, float], weights: dict[str, float]
) -> tuple[float | None, float | None]:
    if not returns:
        return None, None
    equal = math.fsum(returns.values()) / len(returns)
    total = math.fsum(weights.values())
    cap = math.fsum(weights[s] * returns[s] for s in weights) / total if total > 0 else None
    return equal, cap


def sector_index(
    members: Mapping[str, Series], circulating: Mapping[str, float | None]
) -> IndexSeries:
    """Equal- and cap-weighted index over the union of the members' open times."""
    by_time: dict[int, dict[str, float]] = {}
    for symbol, series in members.items():
        for t, c in zip(series.times, series.closes, strict=True):
            by_time.setdefault(t, {})[symbol] = c
    has_cap = any(circulating.get(s) for s in members)
    last: dict[str, float] = {}
    times: list[int] = []
    equal: list[float] = []
    cap: list[float] = []
    level_eq, level_cap = 100.0, 100.0
    for t in sorted(by_time):
        returns: dict[str, float] = {}
        weights: dict[str, float] = {}
        for symbol, close in by_time[t].items():
            prev = last.get(symbol)
            if prev is not None and prev > 0:
                returns[symbol] = close / prev - 1.0
                supply = circulating.get(symbol)
                if supply:
                    weights[symbol] = supply * prev
            last[symbol] = close
        r_eq, r_cap = _step_return(returns, weights)
        if r_eq is not None:
            level_eq *= 1.0 + r_eq
        if r_cap is not None:
            level_cap *= 1.0 + r_cap
        times.append(t)
        equal.append(level_eq)
        cap.append(level_cap)
    return IndexSeries(times, equal, cap if has_cap else None)


def performance(index: IndexSeries, as_of: int, period_ms: int) -> tuple[float | None, ...]:
    """(equal, cap) return over `period_ms` ending at `as_of`; None where history is short."""
    now = index.value_at(as_of)
    if now is None or not index.times or index.times[0] > as_of - period_ms:
        return None, None
    then = index.value_at(as_of - period_ms)
    if then is None:
        return None, None
    eq = now[0] / then[0] - 1.0
    cap = now[1] / then[1] - 1.0 if now[1] is not None and then[1] else None
    return eq, cap


def ema(values: Sequence[float], period: int) -> float | None:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first value."""
    if not values:
        return None
    alpha = 2.0 / (period + 1)
    level = values[0]
    for v in values[1:]:
        level += alpha * (v - level)
    return level


def breadth(members: Mapping[str, Series], period: int) -> float | None:
    """Share of members (with at least `period` candles) whose last close is above their EMA."""
    eligible = [s for s in members.values() if len(s) >= period]
    if not eligible:
        return None
    above = sum(1 for s in eligible if s.closes[-1] > (ema(s.closes, period) or 0.0))
    return above / len(eligible)


def rs_ranks(perf: Mapping[str, float | None]) -> dict[str, int]:
    """Rank 1 = strongest return; sectors without one get no rank. Ties by id."""
    ordered = sorted((-(v), k) for k, v in perf.items() if v is not None)
    return {k: i + 1 for i, (_, k) in enumerate(ordered)}


def leave_one_out_correlations(
    returns: Mapping[str, Returns], start: int, end: int
) -> dict[str, float | None]:
    """Each member's correlation to the equal-weighted mean return of the *other* members.

    Leaving the member out keeps it from correlating with itself (in a two-member sector
    the index would otherwise be half the member).
    """
    out: dict[str, float | None] = {}
    for symbol, own in returns.items():
        others = [r for s, r in returns.items() if s != symbol]
        if not others:
            out[symbol] = None
            continue
        times = {t for r in others for t in r if start < t <= end}
        rest: Returns = {}
        for t in times:
            values = [r[t] for r in others if t in r]
            rest[t] = math.fsum(values) / len(values)
        out[symbol] = correlation(own, rest, start, end)[0]
    return out


@dataclass(frozen=True, slots=True)
class SectorSnapshot:
    id: str
    members: list[str]
    index: IndexSeries
    time: int
    performance: dict[str, tuple[float | None, ...]]
    breadth: float | None
    rank: int | None = None
    rank_change_24h: int | None = None
    correlations: dict[str, dict[str, float | None]] = field(default_factory=dict)
    member_correlation: dict[str, float | None] = field(default_factory=dict)
    breakdowns: list[str] = field(default_factory=list)


def _snapshot(
    sector_id: str,
    members: Mapping[str, Series],
    returns: Mapping[str, Returns],
    circulating: Mapping[str, float | None],
    as_of: int,
    params: SectorParams,
) -> SectorSnapshot:
    index = sector_index(members, circulating)
    start = as_of - params.correlation_window_ms
    loo = leave_one_out_correlations(returns, start, as_of)
    return SectorSnapshot(
        sector_id,
        sorted(members),
        index,
        as_of,
        {name: performance(index, as_of, ms) for name, ms in PERIODS.items()},
        breadth(members, params.ema_period),
        correlations=correlation_matrix(returns, start, as_of),
        member_correlation=loo,
        breakdowns=sorted(
            s for s, v in loo.items() if v is not None and v < params.breakdown_threshold
        ),
    )


def compute_sectors(
    sectors: Mapping[str, Sequence[str]],
    universe: Mapping[str, Series],
    circulating: Mapping[str, float | None],
    as_of: int,
    params: SectorParams | None = None,
) -> dict[str, SectorSnapshot]:
    """Every sector with at least one member with candles up to `as_of` in `universe`
    (symbol -> candles), ranked."""
    params = params or SectorParams()
    returns = {
        s: log_returns(series.upto(as_of), params.interval_ms) for s, series in universe.items()
    }
    out: dict[str, SectorSnapshot] = {}
    for sector_id, symbols in sorted(sectors.items()):
        cut = {s: universe[s].upto(as_of) for s in symbols if s in universe}
        members = {s: series for s, series in cut.items() if len(series)}
        if members:
            member_returns = {s: returns[s] for s in members}
            out[sector_id] = _snapshot(
                sector_id, members, member_returns, circulating, as_of, params
            )
    period = PERIODS[RANK_PERIOD]
    now = rs_ranks({k: v.performance[RANK_PERIOD][0] for k, v in out.items()})
    before = rs_ranks({k: performance(v.index, as_of - period, period)[0] for k, v in out.items()})
    for sector_id, snap in list(out.items()):
        rank = now.get(sector_id)
        previous = before.get(sector_id)
        change = previous - rank if rank is not None and previous is not None else None
        out[sector_id] = replace(snap, rank=rank, rank_change_24h=change)
    return out
