"""The investor grade's optional on-chain activity factor (docs/grades.md, docs/onchain.md)."""

from __future__ import annotations

import math
import random

import pytest

from cryptopulse.domain.correlation import Series
from cryptopulse.domain.grades import (
    INVESTOR_WEIGHTS,
    ONCHAIN_FACTOR,
    ONCHAIN_INVESTOR_WEIGHTS,
    GradeParams,
    compute_grades,
    percentiles,
)

STEP = 300_000
PARAMS = GradeParams(interval_ms=STEP, trader_window_ms=10 * STEP, investor_window_ms=20 * STEP)


def make_series(seed: int, n: int = 40, drift: float = 0.0) -> Series:
    rng = random.Random(seed)
    price, closes = 100.0, []
    for _ in range(n):
        price *= math.exp(drift + rng.gauss(0, 0.01))
        closes.append(price)
    volumes = [1.0 + rng.random() for _ in closes]
    return Series(tuple(i * STEP for i in range(n)), tuple(closes), tuple(volumes))


def universe() -> dict[str, Series]:
    return {f"S{i}": make_series(i, drift=(i - 3) * 0.001) for i in range(6)}


AS_OF = 39 * STEP


def test_onchain_weights_take_ten_points_from_momentum() -> None:
    assert math.fsum(ONCHAIN_INVESTOR_WEIGHTS.values()) == pytest.approx(1.0)
    assert ONCHAIN_INVESTOR_WEIGHTS[ONCHAIN_FACTOR] == 0.10
    assert ONCHAIN_INVESTOR_WEIGHTS["momentum"] == pytest.approx(
        INVESTOR_WEIGHTS["momentum"] - 0.10
    )
    others = {
        f: w for f, w in ONCHAIN_INVESTOR_WEIGHTS.items() if f not in ("momentum", ONCHAIN_FACTOR)
    }
    assert others == {f: w for f, w in INVESTOR_WEIGHTS.items() if f != "momentum"}


def test_no_factor_is_the_plain_grade() -> None:
    plain = compute_grades(universe(), AS_OF, PARAMS)
    assert compute_grades(universe(), AS_OF, PARAMS, onchain={}) == plain
    assert compute_grades(universe(), AS_OF, PARAMS, onchain=None) == plain
    assert all(ONCHAIN_FACTOR not in g.factors["investor"] for g in plain.values())


def test_symbols_without_data_are_graded_exactly_as_before() -> None:
    plain = compute_grades(universe(), AS_OF, PARAMS)
    onchain = {"S1": 0.3, "S4": -0.2, "S5": 0.05}
    mixed = compute_grades(universe(), AS_OF, PARAMS, onchain=onchain)
    for symbol in ("S0", "S2", "S3"):
        assert mixed[symbol] == plain[symbol]  # grades and factor detail, bit for bit
    for symbol in onchain:
        assert mixed[symbol].trader == plain[symbol].trader  # trader grade never changes
        assert mixed[symbol].investor != plain[symbol].investor


def test_factor_ranked_only_among_symbols_that_have_it() -> None:
    onchain = {"S1": 0.3, "S4": -0.2, "S5": 0.05}
    grades = compute_grades(universe(), AS_OF, PARAMS, onchain=onchain)
    ranks = percentiles(onchain)  # three symbols: 0, 50, 100, whatever the others do
    assert ranks == {"S4": 0.0, "S5": 50.0, "S1": 100.0}
    for symbol, value in onchain.items():
        detail = grades[symbol].factors["investor"]
        assert detail[ONCHAIN_FACTOR] == (value, ranks[symbol])
        # The grade is the weighted sum with the on-chain weights, from the same percentiles
        # of the market factors as everyone else's.
        expected = math.fsum(w * detail[f][1] for f, w in ONCHAIN_INVESTOR_WEIGHTS.items())
        assert grades[symbol].investor == pytest.approx(expected, abs=1e-12)


def test_one_symbol_with_data_gets_the_middle_percentile() -> None:
    grades = compute_grades(universe(), AS_OF, PARAMS, onchain={"S2": 1.5})
    assert grades["S2"].factors["investor"][ONCHAIN_FACTOR] == (1.5, 50.0)


def test_factor_of_ungraded_or_unknown_symbol_is_ignored() -> None:
    series = universe()
    series["SHORT"] = make_series(99, n=5)  # too few candles for either window
    plain = compute_grades(series, AS_OF, PARAMS)
    with_extra = compute_grades(
        series, AS_OF, PARAMS, onchain={"SHORT": 9.0, "NOPE": 1.0, "S3": 0.1, "S0": math.nan}
    )
    assert with_extra["SHORT"].investor is None
    assert "NOPE" not in with_extra
    assert with_extra["S0"] == plain["S0"]  # NaN is no data
    # S3 alone among the graded symbols has data: ranked in a universe of one.
    assert with_extra["S3"].factors["investor"][ONCHAIN_FACTOR] == (0.1, 50.0)


def test_higher_activity_growth_never_lowers_the_grade() -> None:
    low = compute_grades(universe(), AS_OF, PARAMS, onchain={"S1": -0.5, "S2": 0.0})
    high = compute_grades(universe(), AS_OF, PARAMS, onchain={"S1": 0.5, "S2": 0.0})
    assert high["S1"].investor is not None and low["S1"].investor is not None
    assert high["S1"].investor - low["S1"].investor == pytest.approx(0.10 * 100.0)


def test_deterministic_regardless_of_input_order() -> None:
    onchain = {"S5": 0.05, "S1": 0.3, "S4": -0.2}
    first = compute_grades(universe(), AS_OF, PARAMS, onchain=onchain)
    shuffled_universe = dict(reversed(list(universe().items())))
    shuffled = dict(reversed(list(onchain.items())))
    assert compute_grades(shuffled_universe, AS_OF, PARAMS, onchain=shuffled) == first
    assert compute_grades(universe(), AS_OF, PARAMS, onchain=onchain) == first
