"""Close series, log returns and rolling Pearson correlations (docs/sectors.md).

A return exists at time t only when the instrument has candles at t and at t - interval
(`r_t = ln(close_t / close_{t - interval})`): a gap in the candles leaves a gap in the
returns rather than a multi-interval return mixed with one-interval ones. Two instruments
are correlated over the times in the window where both have a return (pairwise complete).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Correlated",
    "Returns",
    "Series",
    "correlation",
    "correlation_matrix",
    "log_returns",
    "pearson",
    "rank_correlations",
]

# Fewer common returns than this and a correlation means nothing: report none.
MIN_OVERLAP = 10

Returns = dict[int, float]  # open_time -> log return ending at that candle


@dataclass(frozen=True, slots=True)
class Series:
    """Closed candles of one instrument and interval, oldest first (parallel sequences)."""

    times: Sequence[int]
    closes: Sequence[float]
    volumes: Sequence[float]  # quote volume per candle

    def __len__(self) -> int:
        return len(self.times)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Index range [lo, hi) of the candles with start < open_time <= end."""
        return bisect_right(self.times, start), bisect_right(self.times, end)

    def upto(self, end: int) -> Series:
        """The candles with open_time <= end."""
        hi = bisect_right(self.times, end)
        return Series(self.times[:hi], self.closes[:hi], self.volumes[:hi])


def log_returns(series: Series, interval_ms: int) -> Returns:
    """One-interval log returns keyed by the open time of the candle they end at."""
    out: Returns = {}
    times, closes = series.times, series.closes
    for i in range(1, len(times)):
        if times[i] - times[i - 1] == interval_ms and closes[i - 1] > 0 and closes[i] > 0:
            out[times[i]] = math.log(closes[i] / closes[i - 1])
    return out


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation, or None with fewer than MIN_OVERLAP points or a flat series."""
    n = len(xs)
    if n < MIN_OVERLAP or n != len(ys):
        return None
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0.0 or syy <= 0.0:
        return None
    # Rounding can push |r| a hair past 1; clamp so clients never see 1.0000000000000002.
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def correlation(a: Returns, b: Returns, start: int, end: int) -> tuple[float | None, int]:
    """Correlation of two return series over start < t <= end, and the overlap used."""
    times = sorted(t for t in a if start < t <= end and t in b)
    if len(times) < MIN_OVERLAP:
        return None, len(times)
    return pearson([a[t] for t in times], [b[t] for t in times]), len(times)


def correlation_matrix(
    returns: Mapping[str, Returns], start: int, end: int
) -> dict[str, dict[str, float | None]]:
    """Symmetric matrix of pairwise correlations (diagonal 1.0 where a series has data)."""
    names = sorted(returns)
    matrix: dict[str, dict[str, float | None]] = {name: {} for name in names}
    for i, a in enumerate(names):
        has_data = any(start < t <= end for t in returns[a])
        matrix[a][a] = 1.0 if has_data else None
        for b in names[i + 1 :]:
            value, _ = correlation(returns[a], returns[b], start, end)
            matrix[a][b] = matrix[b][a] = value
    return matrix


@dataclass(frozen=True, slots=True)
class Correlated:
    name: str
    correlation: float
    overlap: int


def rank_correlations(
    target: Returns, others: Iterable[tuple[str, Returns]], start: int, end: int
) -> list[Correlated]:
    """Every other series with a defined correlation to `target`, most correlated first
    (ties by name, so the order is stable)."""
    found = []
    for name, series in others:
        value, overlap = correlation(target, series, start, end)
        if value is not None:
            found.append(Correlated(name, value, overlap))
    found.sort(key=lambda c: (-c.correlation, c.name))
    return found
