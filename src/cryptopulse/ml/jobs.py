"""Training and registration jobs (used by `cryptopulse train` / `models`, and tests).

Training is CPU-bound and runs in a worker thread, never on the event loop; the result is
a new version in the registry, which running servers pick up within `ml_reload_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from cryptopulse.ml.features import FEATURE_SET, FEATURES
from cryptopulse.ml.models import OnnxModel
from cryptopulse.ml.training import TrainParams, train_baseline
from cryptopulse.store.analytics import AnalyticsStore
from cryptopulse.store.ml import MLStore, ModelInfo, NewModel
from cryptopulse.store.sql import SQLStore

__all__ = ["BASELINE", "register_onnx", "train_and_register"]

BASELINE = "baseline"
MAX_TRAIN_CANDLES = 100_000


def _now_ms() -> int:
    return int(time.time() * 1000)


async def train_and_register(
    store: SQLStore,
    instrument: str,
    interval: str,
    params: TrainParams | None = None,
    *,
    limit: int = MAX_TRAIN_CANDLES,
    name: str = BASELINE,
) -> ModelInfo:
    """Fit the baseline on the newest `limit` closed candles of a series, walk-forward
    scored, and store it as the next version of `name` for that instrument."""
    params = params or TrainParams()
    candles = await AnalyticsStore(store).candles_between(instrument, interval, None, None, limit)
    if not candles:
        raise ValueError(f"no closed {interval} candles of {instrument} in the store")
    trained = await asyncio.to_thread(train_baseline, candles, params)
    return await MLStore(store).add(
        NewModel(
            name=name,
            kind="builtin",
            instrument=instrument,
            interval=interval,
            horizon=trained.horizon,
            feature_set=trained.feature_set,
            features=trained.features,
            onnx=trained.onnx,
            created=_now_ms(),
            window_start=trained.window_start,
            window_end=trained.window_end,
            scores={**trained.scores, "train_samples": trained.samples},
        )
    )


async def register_onnx(
    store: SQLStore,
    onnx: bytes,
    *,
    name: str,
    interval: str,
    horizon: int,
    features: Sequence[str] = FEATURES,
    instrument: str | None = None,
) -> ModelInfo:
    """Check an ONNX model against the contract (ml/models.py) and register it; raises
    `InvalidModel` when it does not load or answer like a probability model."""
    if name == BASELINE:
        raise ValueError(f"{BASELINE!r} is the built-in model's name")
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    await asyncio.to_thread(OnnxModel, onnx, features)
    return await MLStore(store).add(
        NewModel(
            name=name,
            kind="onnx",
            instrument=instrument,
            interval=interval,
            horizon=horizon,
            feature_set=FEATURE_SET,
            features=tuple(features),
            onnx=onnx,
            created=_now_ms(),
        )
    )
