"""Features: no look-ahead, the batch path equals the live path, scale-free, finite."""

from __future__ import annotations

import math

import msgspec
import numpy as np

from cryptopulse.domain.models import Candle
from cryptopulse.ml.features import FEATURES, FeatureState, feature_matrix

from .factories import real_candles, walk_candles


def test_changing_the_future_does_not_change_past_features() -> None:
    candles = real_candles("ETH", 800)
    cut = 500
    # Shift every later candle: prices x1.7 and a crash, volumes x10.
    future = [
        msgspec.structs.replace(c, open=c.open * 1.7, high=c.high * 2.5, low=c.low * 0.5,
                            close=c.close * (0.3 if i % 2 else 1.9), volume=c.volume * 10)
        for i, c in enumerate(candles[cut:])
    ]  # fmt: skip
    original = feature_matrix(candles)
    shifted = feature_matrix(candles[:cut] + future)
    before = original.index < cut
    assert before.sum() > 400
    np.testing.assert_array_equal(original.rows[before], shifted.rows[shifted.index < cut])
    # ... and the future rows did change, so the test can tell.
    assert not np.array_equal(original.rows[~before], shifted.rows[shifted.index >= cut])


def test_batch_path_is_the_live_path() -> None:
    candles = real_candles("LTC", 600)
    matrix = feature_matrix(candles)
    state = FeatureState()
    live = [state.update(c) for c in candles]
    rows = [np.asarray(r, dtype=np.float32) for r in live if r is not None]
    np.testing.assert_array_equal(np.stack(rows), matrix.rows)
    assert matrix.rows.shape[1] == len(FEATURES)
    assert list(matrix.index) == [i for i, r in enumerate(live) if r is not None]


def test_warm_up_then_every_row_is_finite() -> None:
    matrix = feature_matrix(real_candles("XMR", 1000))
    assert matrix.index[0] == 48  # the 48-candle return needs 49 closes
    assert np.isfinite(matrix.rows).all()
    assert (np.diff(matrix.times) > 0).all()


def test_features_do_not_depend_on_the_price_level() -> None:
    candles = walk_candles(300)
    scaled = [msgspec.structs.replace(c, open=c.open * 1000, high=c.high * 1000, low=c.low * 1000,
                                  close=c.close * 1000) for c in candles]  # fmt: skip
    a, b = feature_matrix(candles).rows, feature_matrix(scaled).rows
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_an_old_or_repeated_candle_is_ignored() -> None:
    candles = walk_candles(80)
    state = FeatureState()
    for c in candles:
        state.update(c)
    before = state.values
    assert before is not None
    stale: Candle = msgspec.structs.replace(candles[-2], close=candles[-2].close * 3)
    assert state.update(stale) == before
    assert state.update(candles[-1]) == before
    assert all(math.isfinite(v) for v in before)
