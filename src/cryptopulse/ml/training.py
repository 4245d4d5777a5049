"""The built-in baseline: P(close in `horizon` candles > close now), trained walk-forward.

Walk-forward: the labelled rows are cut into ``folds + 1`` consecutive blocks; block k
(k >= 1) is predicted by a model fitted on every row before it, less the last `horizon`
rows, whose labels look into block k (purging: no label of the training set overlaps the
test block). The out-of-sample predictions of all blocks give the scores; the model that
is stored is then fitted on every labelled row. Pure and CPU-bound: run it in a worker
thread or process (`cryptopulse train` does), never on the event loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cryptopulse.domain.models import Candle
from cryptopulse.ml._onnx_trees import hgb_to_onnx
from cryptopulse.ml.features import FEATURE_SET, FEATURES, feature_matrix

__all__ = ["TrainParams", "TrainedModel", "score_predictions", "train_baseline"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Label horizon, walk-forward folds and the gradient boosting's size."""

    horizon: int = 12
    folds: int = 5
    max_iter: int = 100
    learning_rate: float = 0.05
    max_depth: int = 3
    min_samples_leaf: int = 50
    min_train_rows: int = 500

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.folds < 1 or self.max_iter < 1:
            raise ValueError("horizon, folds and max_iter must be at least 1")


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A fitted baseline as ONNX bytes, with its data window and out-of-sample scores."""

    onnx: bytes
    features: tuple[str, ...]
    feature_set: str
    horizon: int
    window_start: int  # open time of the first candle used
    window_end: int  # open time of the last candle whose label was known
    samples: int  # labelled rows the stored model was fitted on
    scores: dict[str, Any] = field(default_factory=dict)


def _classifier(params: TrainParams) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    # No early stopping: it draws a random validation split, and the fit must be repeatable.
    return HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        early_stopping=False,
        random_state=0,
    )


def _labels(closes: Floats, index: npt.NDArray[np.int64], horizon: int) -> tuple[Floats, int]:
    """Forward `horizon`-candle simple returns of the rows that have one, and their count."""
    known = int(np.searchsorted(index, len(closes) - horizon))
    at = index[:known]
    return closes[at + horizon] / closes[at] - 1.0, known


def _acting_vs_holding(p: Floats, forward: Floats, horizon: int) -> dict[str, float | int]:
    """Every `horizon`-th out-of-sample row is a decision: long for the next `horizon`
    candles when p > 0.5, else flat; holding is long at every decision. No fees."""
    step = slice(0, None, horizon)
    decisions, returns = p[step], forward[step]
    long = decisions > 0.5
    acting = float(np.prod(1.0 + np.where(long, returns, 0.0)) - 1.0)
    holding = float(np.prod(1.0 + returns) - 1.0)
    return {
        "decisions": len(decisions),
        "long_fraction": float(long.mean()) if len(long) else 0.0,
        "strategy_return": acting,
        "hold_return": holding,
    }


def score_predictions(
    p: Floats, forward: Floats, horizon: int, train_base_rate: float
) -> dict[str, Any]:
    """AUC, log loss, Brier, hit rate and acting vs holding of out-of-sample probabilities
    `p` against forward returns; plus the same losses of always answering the training base
    rate (what "no better than chance" means here)."""
    from sklearn.metrics import (  # type: ignore[import-untyped]
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = (forward > 0.0).astype(np.int64)
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    constant = np.full_like(p, min(max(train_base_rate, 1e-6), 1 - 1e-6))
    both = len(set(y.tolist())) == 2
    return {
        "samples": len(y),
        "base_rate": float(y.mean()) if len(y) else math.nan,
        "auc": float(roc_auc_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "hit_rate": float(((p > 0.5) == (y == 1)).mean()),
        "log_loss_base_rate": float(log_loss(y, constant, labels=[0, 1])),
        "brier_base_rate": float(brier_score_loss(y, constant)),
        **_acting_vs_holding(p, forward, horizon),
    }


def _walk_forward(
    x: npt.NDArray[np.float32], forward: Floats, params: TrainParams
) -> dict[str, Any]:
    n, h = len(x), params.horizon
    y = (forward > 0.0).astype(np.int64)
    bounds = np.linspace(0, n, params.folds + 2).astype(int)
    preds: list[Floats] = []
    rates: list[float] = []
    used: list[Floats] = []
    for k in range(1, params.folds + 1):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        train_end = lo - h  # purge: these rows' labels reach into the test block
        if train_end < params.min_train_rows or len(set(y[:train_end].tolist())) < 2:
            continue
        model = _classifier(params).fit(x[:train_end], y[:train_end])
        preds.append(model.predict_proba(x[lo:hi])[:, 1])
        used.append(forward[lo:hi])
        rates.append(float(y[:train_end].mean()) * (hi - lo))
    if not preds:
        raise ValueError(f"too little history: {n} labelled rows for {params.folds} folds")
    p, fwd = np.concatenate(preds), np.concatenate(used)
    scores = score_predictions(p, fwd, h, sum(rates) / len(p))
    scores["folds"] = len(preds)
    scores["oos_start_row"] = n - len(p)
    return scores


def train_baseline(candles: Sequence[Candle], params: TrainParams | None = None) -> TrainedModel:
    """Walk-forward scores and the final model for one series of closed candles."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    params = params or TrainParams()
    # One thread: many OpenMP threads on a small, busy box cost 10x (measured 29 s vs 3.5 s).
    with threadpool_limits(1):
        return _train(candles, params)


def _train(candles: Sequence[Candle], params: TrainParams) -> TrainedModel:
    matrix = feature_matrix(candles)
    closes = np.asarray([c.close for c in candles], dtype=np.float64)
    forward, known = _labels(closes, matrix.index, params.horizon)
    x = matrix.rows[:known]
    scores = _walk_forward(x, forward, params)
    oos_first = int(matrix.times[scores.pop("oos_start_row")])
    scores["oos_start"] = oos_first
    y = (forward > 0.0).astype(np.int64)
    final = _classifier(params).fit(x, y)
    return TrainedModel(
        onnx=hgb_to_onnx(final, len(FEATURES)),
        features=FEATURES,
        feature_set=FEATURE_SET,
        horizon=params.horizon,
        window_start=candles[0].open_time,
        window_end=int(matrix.times[known - 1]),
        samples=known,
        scores=scores,
    )
