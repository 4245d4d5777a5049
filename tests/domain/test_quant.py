"""Quant metrics against a pandas/numpy oracle on real closes, plus edge cases and
invariants."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse.domain.quant import QuantMetrics, periods_per_year, quant_metrics
from cryptopulse.importer import read_candles

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def closes_by_time(name: str) -> pd.Series:
    path = DATA / "candles" / f"{name}-5m.csv.gz"
    candles = read_candles(path, f"binance:{name}", "5m")
    return pd.Series({c.open_time: c.close for c in candles})


def oracle(closes: pd.Series, bench: pd.Series, ppy: float, rf_annual: float) -> dict[str, float]:
    r = closes.pct_change().dropna()
    b = bench.pct_change().dropna()
    rf = (1 + rf_annual) ** (1 / ppy) - 1
    excess = r - rf
    downside = np.sqrt((np.minimum(excess, 0) ** 2).mean())
    total = closes.iloc[-1] / closes.iloc[0]
    return {
        "total_return": total - 1,
        "cagr": total ** (ppy / len(r)) - 1,
        "volatility": r.std() * np.sqrt(ppy),
        "sharpe": excess.mean() / r.std() * np.sqrt(ppy),
        "sortino": excess.mean() / downside * np.sqrt(ppy),
        "max_drawdown": (1 - closes / closes.cummax()).max(),
        "skew": r.skew(),
        "kurtosis": r.kurt(),
        "tail_ratio": abs(np.percentile(r, 95)) / abs(np.percentile(r, 5)),
        "profit_factor": r[r > 0].sum() / -r[r < 0].sum(),
        "beta": np.cov(r, b)[0, 1] / b.var(),
        "correlation": np.corrcoef(r, b)[0, 1],
    }


@pytest.mark.parametrize(
    ("name", "benchmark", "risk_free"),
    [("LTC-BTC", "ETH-BTC", 0.0), ("XMR-BTC", "ETH-BTC", 0.05), ("NXT-BTC", "ZEC-BTC", 0.02)],
)
def test_equal_to_pandas_on_real_closes(name: str, benchmark: str, risk_free: float) -> None:
    both = pd.concat([closes_by_time(name), closes_by_time(benchmark)], axis=1, join="inner")
    closes, bench = both.iloc[:, 0], both.iloc[:, 1]
    ppy = periods_per_year("5m")
    m = quant_metrics(list(closes), interval="5m", benchmark=list(bench), risk_free=risk_free)
    expected = oracle(closes, bench, ppy, risk_free)
    assert m.periods == len(closes) - 1
    for field, value in expected.items():
        assert getattr(m, field) == pytest.approx(value, rel=1e-9), field


def test_annualization_follows_the_interval() -> None:
    assert periods_per_year("1d") == 365
    assert periods_per_year("1h") == 365 * 24
    assert periods_per_year("5m") == 365 * 288
    with pytest.raises(ValueError):
        periods_per_year("2d")
    closes = [100.0, 101.0, 99.5, 102.0, 101.0]
    daily = quant_metrics(closes, interval="1d")
    hourly = quant_metrics(closes, interval="1h")
    assert hourly.volatility == pytest.approx(daily.volatility * math.sqrt(24))  # type: ignore[operator]
    assert daily.total_return == hourly.total_return


def test_undefined_metrics_are_none() -> None:
    assert quant_metrics([100.0], interval="1d") == QuantMetrics(*(None,) * 12, periods=0)
    flat = quant_metrics([100.0] * 10, interval="1d")
    assert (flat.total_return, flat.volatility, flat.max_drawdown) == (0.0, 0.0, 0.0)
    assert flat.sharpe is flat.sortino is flat.skew is flat.kurtosis is None
    assert flat.tail_ratio is flat.profit_factor is None
    rising = quant_metrics([100.0, 101.0, 103.0, 104.0], interval="1d")
    assert rising.profit_factor is None and rising.sortino is None and rising.beta is None


def test_a_steep_short_window_does_not_overflow() -> None:
    m = quant_metrics([1.0, 1000.0], interval="1m")
    assert m.cagr is None and m.total_return == 999.0


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        quant_metrics([100.0, 0.0], interval="1d")
    with pytest.raises(ValueError):
        quant_metrics([100.0, 101.0, 102.0], interval="1d", benchmark=[1.0, 2.0])
    with pytest.raises(ValueError):
        quant_metrics([100.0, 101.0], interval="7m")


prices = st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=5, max_size=80)


@settings(max_examples=80, deadline=None)
@given(prices)
def test_invariants(closes: list[float]) -> None:
    m = quant_metrics(closes, interval="1h", benchmark=closes)
    assert m.max_drawdown is not None and 0.0 <= m.max_drawdown < 1.0
    assert m.total_return == pytest.approx(closes[-1] / closes[0] - 1)
    if m.volatility:
        # Against itself: beta and correlation are 1.
        assert m.beta == pytest.approx(1.0) and m.correlation == pytest.approx(1.0)
    if m.tail_ratio is not None:
        assert m.tail_ratio >= 0.0
