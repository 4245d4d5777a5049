"""The walk-forward baseline: exported ONNX equals scikit-learn, purged folds, honest
scores, repeatable fits."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from cryptopulse.ml._onnx_trees import hgb_to_onnx
from cryptopulse.ml.features import FEATURES
from cryptopulse.ml.models import OnnxModel
from cryptopulse.ml.training import TrainParams, score_predictions, train_baseline

from .factories import real_candles, walk_candles

SMALL = TrainParams(horizon=6, folds=3, max_iter=15, min_train_rows=200)


def test_onnx_export_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(size=3000) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=4, random_state=0).fit(x, y)
    session = ort.InferenceSession(hgb_to_onnx(model, 5), providers=["CPUExecutionProvider"])
    probe = rng.normal(size=(2000, 5)).astype(np.float32)
    (got,) = session.run(["probability"], {"features": probe})
    np.testing.assert_allclose(got[:, 0], model.predict_proba(probe)[:, 1], atol=1e-5)


def test_walk_forward_on_real_candles() -> None:
    candles = real_candles("ETH", 2500)
    trained = train_baseline(candles, SMALL)
    s = trained.scores
    assert s["folds"] == 3
    assert 0.0 <= s["auc"] <= 1.0 and 0.0 <= s["hit_rate"] <= 1.0
    assert s["log_loss"] > 0 and 0 <= s["brier"] <= 1
    assert s["samples"] < trained.samples  # scored only out of sample
    assert s["oos_start"] > candles[0].open_time
    assert trained.window_start == candles[0].open_time
    # The last `horizon` candles have no label yet: the window stops before them.
    assert trained.window_end == candles[-1 - SMALL.horizon].open_time
    model = OnnxModel(trained.onnx, trained.features)
    p = model.predict(np.zeros((3, len(FEATURES)), dtype=np.float32))
    assert ((p > 0) & (p < 1)).all()


def test_fits_are_repeatable() -> None:
    candles = real_candles("LTC", 1500)
    a, b = train_baseline(candles, SMALL), train_baseline(candles, SMALL)
    assert a.onnx == b.onnx and a.scores == b.scores


def test_no_edge_is_found_in_a_random_walk() -> None:
    trained = train_baseline(walk_candles(3000, seed=7), SMALL)
    s = trained.scores
    assert abs(s["auc"] - 0.5) < 0.06
    # Not better than always answering the base rate (within noise).
    assert s["log_loss"] > s["log_loss_base_rate"] - 0.01


def test_scores_of_known_predictions() -> None:
    forward = np.array([0.01, -0.02, 0.03, -0.01, 0.02, -0.03])
    perfect = score_predictions((forward > 0).astype(float) * 0.8 + 0.1, forward, 1, 0.5)
    assert perfect["auc"] == 1.0 and perfect["hit_rate"] == 1.0
    assert perfect["strategy_return"] == pytest.approx(1.01 * 1.03 * 1.02 - 1)
    always_long = score_predictions(np.full(6, 0.9), forward, 1, 0.5)
    assert always_long["strategy_return"] == pytest.approx(always_long["hold_return"])
    assert always_long["long_fraction"] == 1.0
    # Decisions every `horizon` rows: 3 of 6 with horizon 2.
    assert score_predictions(np.full(6, 0.9), forward, 2, 0.5)["decisions"] == 3


def test_too_little_history_is_refused() -> None:
    with pytest.raises(ValueError, match="too little history"):
        train_baseline(walk_candles(300), SMALL)
