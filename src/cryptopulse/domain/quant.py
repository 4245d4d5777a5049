"""Quant metrics of a price series: return, risk, risk-adjusted return, shape, co-movement.

Per-candle simple returns r = close/previous − 1; annualized with the number of candles of
the interval in a 365-day year (crypto trades every day). A metric that is undefined for
the window (too few returns, zero variance, no losing candle, ...) is None.
Formulas in docs/metrics.md; pandas and numpy are the test oracle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cryptopulse.domain.instruments import INTERVALS

__all__ = ["YEAR_MS", "QuantMetrics", "percentile", "periods_per_year", "quant_metrics"]

YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True)
class QuantMetrics:
    """Metrics over `periods` returns; every ratio and rate is a fraction (0.1 = 10 %)."""

    total_return: float | None
    cagr: float | None
    volatility: float | None  # annualized standard deviation of returns
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None  # largest fall from a running peak, ≥ 0
    skew: float | None
    kurtosis: float | None  # excess kurtosis (normal = 0)
    tail_ratio: float | None  # |95th percentile| / |5th percentile| of returns
    profit_factor: float | None  # sum of gains / |sum of losses|
    beta: float | None
    correlation: float | None
    periods: int


def periods_per_year(interval: str) -> float:
    """Candles of `interval` in a 365-day year."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    return YEAR_MS / INTERVALS[interval]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation, as numpy's default."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def _returns(closes: Sequence[float]) -> list[float]:
    if any(not c > 0.0 for c in closes):
        raise ValueError("closes must be positive")
    return [b / a - 1.0 for a, b in zip(closes, closes[1:], strict=False)]


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den != 0.0 and math.isfinite(den) else None


def _moments(r: Sequence[float]) -> tuple[float | None, float | None]:
    """Adjusted skewness G1 and excess kurtosis G2 (pandas' skew() and kurt())."""
    n = len(r)
    if n < 3:
        return None, None
    m = _mean(r)
    d = [x - m for x in r]
    s2 = math.fsum(x * x for x in d)
    if s2 == 0.0:
        return None, None
    s3 = math.fsum(x * x * x for x in d)
    s4 = math.fsum(x**4 for x in d)
    m2, m3 = s2 / n, s3 / n
    skew = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    if n < 4:
        return skew, None
    kurt = (n + 1) * n * (n - 1) / ((n - 2) * (n - 3)) * s4 / (s2 * s2) - 3.0 * (n - 1) ** 2 / (
        (n - 2) * (n - 3)
    )
    return skew, kurt


def _max_drawdown(closes: Sequence[float]) -> float:
    peak = closes[0]
    worst = 0.0
    for c in closes:
        if c > peak:
            peak = c
        dd = 1.0 - c / peak
        if dd > worst:
            worst = dd
    return worst


def _cagr(total_growth: float, periods: int, ppy: float) -> float | None:
    try:
        return float(total_growth ** (ppy / periods)) - 1.0
    except OverflowError:  # a short, steep window annualizes past float range
        return None


def _co_movement(
    r: Sequence[float], closes_b: Sequence[float], n: int
) -> tuple[float | None, float | None]:
    """Beta and Pearson correlation of returns `r` against the benchmark's returns."""
    if len(closes_b) != n + 1:
        raise ValueError("benchmark must have as many closes as closes")
    if n < 2:
        return None, None
    b = _returns(closes_b)
    mr, mb = _mean(r), _mean(b)
    cov = math.fsum((x - mr) * (y - mb) for x, y in zip(r, b, strict=True))
    var_b = math.fsum((y - mb) ** 2 for y in b)
    var_r = math.fsum((x - mr) ** 2 for x in r)
    beta = _ratio(cov, var_b)
    corr = _ratio(cov, math.sqrt(var_r * var_b))
    return beta, corr


def quant_metrics(
    closes: Sequence[float],
    *,
    interval: str,
    benchmark: Sequence[float] | None = None,
    risk_free: float = 0.0,
) -> QuantMetrics:
    """Metrics of the closes of consecutive candles of `interval` (oldest first).

    `benchmark` is the closes of another instrument at the same times (for beta and
    correlation); `risk_free` an annual rate, compounded to a per-candle rate.
    """
    ppy = periods_per_year(interval)
    r = _returns(closes)
    n = len(r)
    if n == 0:
        return QuantMetrics(*(None,) * 12, periods=0)
    rf = (1.0 + risk_free) ** (1.0 / ppy) - 1.0
    growth = closes[-1] / closes[0]
    mean = _mean(r)
    mean_excess = mean - rf
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in r) / (n - 1)) if n > 1 else None
    downside = math.sqrt(math.fsum(min(0.0, x - rf) ** 2 for x in r) / n)
    skew, kurt = _moments(r)
    ordered = sorted(r)
    losses = -math.fsum(x for x in r if x < 0.0)
    beta, corr = (None, None) if benchmark is None else _co_movement(r, benchmark, n)
    annual = math.sqrt(ppy)
    return QuantMetrics(
        total_return=growth - 1.0,
        cagr=_cagr(growth, n, ppy),
        volatility=None if sd is None else sd * annual,
        sharpe=None if not sd else mean_excess / sd * annual,
        sortino=None if downside == 0.0 or n < 2 else mean_excess / downside * annual,
        max_drawdown=_max_drawdown(closes),
        skew=skew,
        kurtosis=kurt,
        tail_ratio=_ratio(abs(percentile(ordered, 95.0)), abs(percentile(ordered, 5.0))),
        profit_factor=_ratio(math.fsum(x for x in r if x > 0.0), losses),
        beta=beta,
        correlation=corr,
        periods=n,
    )
