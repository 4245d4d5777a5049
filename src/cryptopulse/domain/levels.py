"""Support and resistance levels: swing highs and lows clustered by ATR-scaled distance.

1. A swing high is a candle whose high is at least the highs of the `swing` candles before
   it and above those of the `swing` after it; a swing low likewise with lows.
2. Swing points (highs and lows together: an old resistance becomes support) sorted by
   price are clustered greedily: a point joins the current cluster while it is within
   ``tolerance_atr × ATR`` of the cluster's mean price. ATR is the latest Wilder ATR.
3. A level is a cluster: its price is the mean of its points, `touches` their count,
   support below the last close and resistance above it. Strength weighs each touch by its
   recency (½ for the first candle, 1 for the last), scaled so the strongest level is 1.

docs/signals.md has the details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptopulse.domain._indicators_range import Atr
from cryptopulse.domain.models import Candle

__all__ = ["Level", "find_levels", "swing_points"]


@dataclass(frozen=True)
class Level:
    """A price where the market turned more than once (or once, with less strength)."""

    price: float
    kind: Literal["support", "resistance"]
    touches: int
    strength: float
    first_time: int
    last_time: int


def swing_points(candles: Sequence[Candle], swing: int = 3) -> list[tuple[float, int]]:
    """(price, index) of every swing high and swing low, in candle order."""
    points: list[tuple[float, int]] = []
    highs = [c.high for c in candles]
    lows = [c.low for c in candles]
    for i in range(swing, len(candles) - swing):
        h, lo = highs[i], lows[i]
        # Ties to the left are allowed, to the right not: a flat top counts once.
        if h >= max(highs[i - swing : i]) and h > max(highs[i + 1 : i + swing + 1]):
            points.append((h, i))
        if lo <= min(lows[i - swing : i]) and lo < min(lows[i + 1 : i + swing + 1]):
            points.append((lo, i))
    return points


def _scale(candles: Sequence[Candle], atr_period: int) -> float:
    atr = Atr(atr_period)
    value: float | None = None
    for c in candles:
        value = atr.update(c.high, c.low, c.close)
    if value is None:  # too little history for ATR: the mean range stands in
        value = sum(c.high - c.low for c in candles) / len(candles)
    return value


def _clusters(points: list[tuple[float, int]], tolerance: float) -> list[list[tuple[float, int]]]:
    clusters: list[list[tuple[float, int]]] = []
    total = 0.0
    for point in sorted(points):
        if clusters and point[0] - total / len(clusters[-1]) <= tolerance:
            clusters[-1].append(point)
            total += point[0]
        else:
            clusters.append([point])
            total = point[0]
    return clusters


def find_levels(
    candles: Sequence[Candle],
    *,
    atr_period: int = 14,
    swing: int = 3,
    tolerance_atr: float = 0.5,
    max_levels: int = 10,
) -> list[Level]:
    """The `max_levels` strongest levels in `candles` (closed, time order), strongest first."""
    if swing < 1 or max_levels < 1 or tolerance_atr < 0:
        raise ValueError("swing and max_levels must be >= 1, tolerance_atr >= 0")
    points = swing_points(candles, swing)
    if not points:
        return []
    tolerance = tolerance_atr * _scale(candles, atr_period)
    last = len(candles) - 1
    close = candles[-1].close
    scored: list[tuple[float, float, list[tuple[float, int]]]] = []
    for cluster in _clusters(points, tolerance):
        score = sum(0.5 + 0.5 * i / last for _, i in cluster)
        price = sum(p for p, _ in cluster) / len(cluster)
        scored.append((score, price, cluster))
    scored.sort(key=lambda s: (-s[0], s[1]))
    best = scored[0][0]
    levels = []
    for score, price, cluster in scored[:max_levels]:
        indices = [i for _, i in cluster]
        levels.append(
            Level(
                price=price,
                kind="support" if price <= close else "resistance",
                touches=len(cluster),
                strength=score / best,
                first_time=candles[min(indices)].open_time,
                last_time=candles[max(indices)].open_time,
            )
        )
    return levels
