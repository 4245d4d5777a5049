"""Grades: factor values, percentiles, weights, coverage, bands, determinism."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse.domain.correlation import Series
from cryptopulse.domain.grades import (
    INVESTOR_WEIGHTS,
    TRADER_WEIGHTS,
    Grade,
    GradeParams,
    band,
    band_changes,
    compute_grades,
    factor_scores,
    percentiles,
)

STEP = 300_000
HOUR = 3_600_000
# Small windows keep the cases readable: trader 10 candles, investor 20.
PARAMS = GradeParams(interval_ms=STEP, trader_window_ms=10 * STEP, investor_window_ms=20 * STEP)


def make_series(closes: list[float], volumes: list[float] | None = None, t0: int = 0) -> Series:
    volumes = volumes or [1.0] * len(closes)
    return Series(tuple(t0 + i * STEP for i in range(len(closes))), tuple(closes), tuple(volumes))


def random_walk(seed: int, n: int = 40, drift: float = 0.0) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= math.exp(drift + rng.gauss(0, 0.01))
        out.append(price)
    return out


def test_weights_sum_to_one() -> None:
    assert math.fsum(TRADER_WEIGHTS.values()) == pytest.approx(1.0)
    assert math.fsum(INVESTOR_WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"a": 1.0}, {"a": 50.0}),
        ({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.0, "b": 50.0, "c": 100.0}),
        ({"a": 3.0, "b": 1.0}, {"a": 100.0, "b": 0.0}),
        ({"a": 1.0, "b": 1.0, "c": 2.0}, {"a": 25.0, "b": 25.0, "c": 100.0}),
        ({"a": 5.0, "b": 5.0}, {"a": 50.0, "b": 50.0}),
    ],
)
def test_percentiles_are_mid_ranks(values: dict[str, float], expected: dict[str, float]) -> None:
    assert percentiles(values) == expected


def test_factor_values_follow_the_documented_formulas() -> None:
    closes = [10.0, 12.0, 9.0, 11.0, 13.0, 12.0, 14.0, 13.0, 15.0, 16.0, 15.0, 17.0]
    volumes = [float(i + 1) for i in range(12)]
    series = make_series(closes, volumes)
    as_of = series.times[-1]
    window = closes[-10:]  # open times in (as_of - 10 steps, as_of]
    r = [math.log(b / a) for a, b in zip(window, window[1:], strict=False)]
    trader = factor_scores(series, as_of, 10 * STEP, PARAMS, depth=False)
    assert trader == pytest.approx(
        {
            "trend": window[-1] / statistics.fmean(window) - 1,
            "momentum": window[-1] / window[0] - 1,
            "risk_adjusted": statistics.fmean(r) / statistics.pstdev(r),
            "liquidity": sum(volumes[-10:]),
            "drawdown": 12.0 / 13.0 - 1,  # the deepest fall from a running peak
        }
    )
    investor = factor_scores(series, as_of, 10 * STEP, PARAMS, depth=True)
    assert investor is not None and investor["liquidity"] == statistics.median(volumes[-10:])


def test_a_symbol_needs_half_the_window_covered() -> None:
    assert factor_scores(make_series([1.0] * 4), 3 * STEP, 10 * STEP, PARAMS, depth=False) is None
    assert factor_scores(make_series([1.0] * 5), 4 * STEP, 10 * STEP, PARAMS, depth=False)


def test_the_best_symbol_on_every_factor_grades_100_and_the_worst_0() -> None:
    up = [100.0 * 1.01**i for i in range(30)]
    down = [100.0 * 0.99**i for i in range(30)]
    # The riser also trades more and never draws down; the faller is worst everywhere.
    flat = [100.0 + (0.5 if i % 2 else 0.0) for i in range(30)]
    universe = {
        "UP": make_series(up, [10.0] * 30),
        "FLAT": make_series(flat, [5.0] * 30),
        "DOWN": make_series(down, [1.0] * 30),
    }
    grades = compute_grades(universe, 29 * STEP, PARAMS)
    assert grades["UP"].trader == pytest.approx(100.0)
    assert grades["DOWN"].trader == pytest.approx(0.0)
    assert grades["UP"].investor == pytest.approx(100.0)
    detail = grades["FLAT"].factors["trader"]
    assert set(detail) == set(TRADER_WEIGHTS)
    assert grades["FLAT"].trader == pytest.approx(
        math.fsum(TRADER_WEIGHTS[f] * p for f, (_, p) in detail.items())
    )


def test_same_inputs_give_the_same_grades_whatever_the_order() -> None:
    universe = {f"S{i}": make_series(random_walk(i)) for i in range(8)}
    first = compute_grades(universe, 39 * STEP, PARAMS)
    reordered = dict(reversed(list(universe.items())))
    assert compute_grades(reordered, 39 * STEP, PARAMS) == first
    assert compute_grades(universe, 39 * STEP, PARAMS) == first


def test_grades_use_only_candles_up_to_as_of() -> None:
    closes = random_walk(3, 60)
    universe = {"A": make_series(closes), "B": make_series(random_walk(4, 60))}
    cut = {name: s.upto(39 * STEP) for name, s in universe.items()}
    assert compute_grades(universe, 39 * STEP, PARAMS) == compute_grades(cut, 39 * STEP, PARAMS)


def test_a_symbol_without_enough_history_is_not_graded() -> None:
    universe = {"OLD": make_series(random_walk(1)), "NEW": make_series([1.0, 1.1], t0=38 * STEP)}
    grades = compute_grades(universe, 39 * STEP, PARAMS)
    assert grades["NEW"].trader is None and grades["NEW"].investor is None
    assert grades["OLD"].trader == 50.0  # alone in the universe


@pytest.mark.parametrize(
    ("grade", "expected"), [(0.0, 0), (19.99, 0), (20.0, 1), (59.9, 2), (80.0, 4), (100.0, 4)]
)
def test_bands(grade: float, expected: int) -> None:
    assert band(grade) == expected


def test_band_changes_report_crossings_only() -> None:
    before = {"A": Grade("A", 0, 39.0, 70.0), "B": Grade("B", 0, 50.0, None)}
    after = {
        "A": Grade("A", HOUR, 41.0, 79.0),
        "B": Grade("B", HOUR, 55.0, 90.0),
        "C": Grade("C", HOUR, 10.0, 10.0),
    }
    changes = band_changes(before, after)
    assert [(c.symbol, c.kind, c.from_band, c.to_band) for c in changes] == [("A", "trader", 1, 2)]
    assert changes[0].previous == 39.0 and changes[0].grade == 41.0 and changes[0].time == HOUR


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6))
def test_grades_stay_between_0_and_100(seeds: list[int]) -> None:
    universe = {f"S{i}": make_series(random_walk(seed)) for i, seed in enumerate(seeds)}
    for grade in compute_grades(universe, 39 * STEP, PARAMS).values():
        for value in (grade.trader, grade.investor):
            assert value is not None and 0.0 <= value <= 100.0
