"""The prediction service over a real store and the memory bus: models from the registry,
features warmed from stored candles, live closes published, the same numbers as offline.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import pytest

from cryptopulse.bus.base import Message
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.ml.features import FEATURES, feature_matrix
from cryptopulse.ml.jobs import register_onnx, train_and_register
from cryptopulse.ml.models import OnnxModel
from cryptopulse.ml.service import NoPrediction, PredictionService
from cryptopulse.ml.training import TrainParams
from cryptopulse.settings import Settings
from cryptopulse.store.ml import MLStore
from cryptopulse.store.sql import SQLStore

from .factories import logistic_onnx, real_candles

ETH = "binance:ETH-BTC"
SMALL = TrainParams(horizon=6, folds=2, max_iter=10, min_train_rows=200)
N = 1200


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(orjson.loads(message.data))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    store = SQLStore(database_url)
    await store.migrate()
    await store.upsert_candles(real_candles("ETH", N))
    yield store
    await store.close()


async def started(store: SQLStore) -> PredictionService:
    settings = Settings(database_url=store.url, ml_reload_s=0.05, analytics_warmup_candles=2000)
    service = PredictionService(settings, store, MemoryBus())
    await service.start()
    return service


async def test_served_prediction_equals_the_offline_one(store: SQLStore) -> None:
    info = await train_and_register(store, ETH, "5m", SMALL)
    service = await started(store)
    try:
        result = await service.predict(ETH, "5m")
        candles = real_candles("ETH", N)
        matrix = feature_matrix(candles)
        got = await MLStore(store).get(info.id)
        assert got is not None
        offline = OnnxModel(got[1], FEATURES).predict(matrix.rows[-1:])[0]
        assert result.time == candles[-1].open_time
        assert result.probability_up == pytest.approx(offline, abs=1e-6)
        body = result.body()
        assert body["target_time"] == result.time + 6 * 300_000
        assert body["model"] == {"id": info.id, "name": "baseline", "version": 1,
                                 "kind": "builtin"}  # fmt: skip
    finally:
        await service.stop()


async def test_live_close_is_published_on_the_predictions_channel(store: SQLStore) -> None:
    await train_and_register(store, ETH, "5m", SMALL)
    service = await started(store)
    recorder = Recorder()
    await service.bus.subscribe(f"predictions:{ETH}", recorder)
    try:
        more = real_candles("ETH", N + 2)
        for candle in more[N:]:
            await service.on_closed_candle(candle)
        for _ in range(200):
            if len(recorder.messages) == 2:
                break
            await asyncio.sleep(0.01)
        assert [m["time"] for m in recorder.messages] == [c.open_time for c in more[N:]]
        model = next(iter(service.models.values())).model
        offline = model.predict(feature_matrix(more).rows[-1:])[0]
        assert recorder.messages[-1]["probability_up"] == pytest.approx(offline, abs=1e-6)
        # A request now sees the same newest candle.
        assert (await service.predict(ETH, "5m")).time == more[-1].open_time
    finally:
        await service.stop()


async def test_models_are_chosen_by_name_and_reloaded(store: SQLStore) -> None:
    service = await started(store)
    try:
        with pytest.raises(NoPrediction, match="no model 'baseline'"):
            await service.predict(ETH, "5m")
        generic = await register_onnx(store, logistic_onnx([3.0], -1.5), name="rsi-tilt",
                                      interval="5m", horizon=3, features=["rsi"])  # fmt: skip
        for _ in range(200):  # reloaded within ml_reload_s
            if generic.id in service.models:
                break
            await asyncio.sleep(0.01)
        result = await service.predict(ETH, "5m", "rsi-tilt")
        rsi = feature_matrix(real_candles("ETH", N)).rows[-1, FEATURES.index("rsi")]
        assert result.probability_up == pytest.approx(1 / (1 + np.exp(-(3 * rsi - 1.5))), 1e-5)
        own = await register_onnx(store, logistic_onnx([0.0], 0.0), name="rsi-tilt",
                                  interval="5m", horizon=3, features=["rsi"],
                                  instrument=ETH)  # fmt: skip
        await service.reload()
        # One registered for the instrument wins over one for every instrument.
        assert (await service.predict(ETH, "5m", "rsi-tilt")).model.id == own.id
        with pytest.raises(NoPrediction, match="not enough closed"):
            await service.predict("binance:LTC-BTC", "5m", "rsi-tilt")
        with pytest.raises(NoPrediction):
            await service.predict(ETH, "1h", "rsi-tilt")
    finally:
        await service.stop()
