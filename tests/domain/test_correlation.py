"""Log returns with gaps, Pearson correlation against numpy, matrices and rankings."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from cryptopulse.domain.correlation import (
    MIN_OVERLAP,
    Series,
    correlation,
    correlation_matrix,
    log_returns,
    pearson,
    rank_correlations,
)

STEP = 300_000


def make_series(closes: list[float], times: list[int] | None = None) -> Series:
    times = times or [i * STEP for i in range(len(closes))]
    return Series(tuple(times), tuple(closes), tuple([1.0] * len(closes)))


def noise(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0, 1) for _ in range(n)]


def test_returns_skip_gaps_in_the_candles() -> None:
    series = make_series([1.0, 2.0, 4.0, 8.0], [0, STEP, 3 * STEP, 4 * STEP])
    assert log_returns(series, STEP) == {STEP: math.log(2.0), 4 * STEP: math.log(2.0)}


def test_pearson_matches_numpy() -> None:
    xs, ys = noise(1, 200), noise(2, 200)
    ys = [0.6 * x + y for x, y in zip(xs, ys, strict=True)]
    assert pearson(xs, ys) == pytest.approx(np.corrcoef(xs, ys)[0, 1], rel=1e-12)


def test_pearson_needs_enough_points_and_variance() -> None:
    assert pearson([1.0] * 50, noise(3, 50)) is None
    short = noise(4, MIN_OVERLAP - 1)
    assert pearson(short, short) is None
    exact = noise(5, MIN_OVERLAP)
    assert pearson(exact, [2 * x for x in exact]) == 1.0


def test_correlation_uses_common_times_inside_the_window() -> None:
    a = {t * STEP: v for t, v in enumerate(noise(6, 100))}
    b = {t: 2.0 * v + 1.0 for t, v in a.items() if t % (3 * STEP)}  # b misses every third
    value, overlap = correlation(a, b, 50 * STEP, 99 * STEP)  # (50, 99]: 49 times
    assert value == pytest.approx(1.0)
    assert overlap == len([t for t in range(51, 100) if t % 3])


def test_matrix_is_symmetric_with_a_unit_diagonal() -> None:
    base = noise(7, 60)
    returns = {
        "A": {i * STEP: v for i, v in enumerate(base)},
        "B": {i * STEP: -v for i, v in enumerate(base)},
        "C": {i * STEP: v for i, v in enumerate(noise(8, 60))},
    }
    matrix = correlation_matrix(returns, -1, 60 * STEP)
    assert matrix["A"]["A"] == 1.0 and matrix["A"]["B"] == pytest.approx(-1.0)
    assert matrix["A"]["C"] == matrix["C"]["A"]
    ranked = rank_correlations(returns["A"], [("B", returns["B"]), ("C", returns["C"])], -1, 10**9)
    assert [c.name for c in ranked] == ["C", "B"]
    assert ranked[-1].correlation == pytest.approx(-1.0) and ranked[-1].overlap == 60
