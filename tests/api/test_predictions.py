"""Prediction endpoints end to end: real candles in SQLite, a trained baseline and ONNX
models in the registry, the real app in process."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.api._stream_ops import normalize_channel
from cryptopulse.ml.features import FEATURES, feature_matrix
from cryptopulse.ml.jobs import register_onnx, train_and_register
from cryptopulse.ml.models import OnnxModel
from cryptopulse.ml.training import TrainParams
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.store.ml import MLStore
from cryptopulse.store.sql import SQLStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ml.factories import logistic_onnx, pairs_only_onnx, real_candles  # noqa: E402

ETH, LTC = "binance:ETH-BTC", "binance:LTC-BTC"
N = 1500
SMALL = TrainParams(horizon=6, folds=2, max_iter=10, min_train_rows=200)


async def _prepare(url: str) -> None:
    store = SQLStore(url)
    await store.migrate()
    try:
        for symbol in ("ETH", "LTC"):
            await store.upsert_candles(real_candles(symbol, N))
        await store.record_instruments([ETH, LTC], "import", 1)
        await train_and_register(store, ETH, "5m", SMALL)
        await register_onnx(store, logistic_onnx([3.0], -1.5), name="rsi-tilt", interval="5m",
                            horizon=3, features=["rsi"])  # fmt: skip
        await register_onnx(store, pairs_only_onnx(len(FEATURES)), name="pairs-only",
                            interval="5m", horizon=1)  # fmt: skip
    finally:
        await store.close()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("predictions") / "store.db"
    asyncio.run(_prepare(f"sqlite+aiosqlite:///{path}"))
    return path


def _settings(db: Path, **overrides: Any) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{db}", source="sim",
                    anonymous_plan="enterprise", analytics_enabled=False,
                    first_key_file=str(db.parent / "first-key.txt"), **overrides)  # fmt: skip


@asynccontextmanager
async def _app(prepared: Path, name: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    db = prepared.parent / name
    shutil.copy(prepared, db)
    app: FastAPI = create_app(_settings(db, **overrides), lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


# Function-scoped: the app's lifespan holds task groups that must close in the task that
# opened them, which a module-scoped async fixture does not guarantee.
@pytest_asyncio.fixture
async def client(prepared: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _app(prepared, "app.db") as client:
        yield client


async def test_get_prediction_is_the_offline_number(
    client: httpx.AsyncClient, prepared: Path
) -> None:
    response = await client.get(f"/v1/predictions/{ETH}")
    assert response.status_code == 200, response.text
    body = response.json()
    candles = real_candles("ETH", N)
    assert body["instrument"] == ETH and body["interval"] == "5m"
    assert body["time"] == candles[-1].open_time
    assert body["horizon"] == 6 and body["target_time"] == body["time"] + 6 * 300_000
    assert body["model"]["name"] == "baseline" and body["model"]["kind"] == "builtin"
    store = SQLStore(f"sqlite+aiosqlite:///{prepared}")
    try:
        found = await MLStore(store).get(body["model"]["id"])
    finally:
        await store.close()
    assert found is not None
    offline = OnnxModel(found[1], FEATURES).predict(feature_matrix(candles).rows[-1:])[0]
    assert body["probability_up"] == pytest.approx(offline, abs=1e-6)


async def test_post_predicts_many_in_order(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/predictions", json={"instruments": [LTC, "binance:eth-btc"], "model": "rsi-tilt"}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["instrument"] for d in data] == [LTC, ETH]
    assert all(d["model"]["kind"] == "onnx" and d["horizon"] == 3 for d in data)
    assert all(0 < d["probability_up"] < 1 for d in data)


PROBLEMS: list[tuple[dict[str, Any], int]] = [
    ({"instruments": [LTC]}, 404),  # no baseline trained for LTC
    ({"instruments": ["binance:NOPE-BTC"], "model": "rsi-tilt"}, 404),  # no candles
    ({"instruments": [ETH], "model": "missing"}, 404),
    ({"instruments": ["not an instrument"]}, 404),
    ({"instruments": []}, 422),
    ({"instruments": [ETH] * 101}, 422),
    ({"instruments": [ETH], "interval": "2m"}, 422),
    ({"instruments": [ETH], "extra": 1}, 422),
]


async def test_post_problems(client: httpx.AsyncClient) -> None:
    for body, status in PROBLEMS:
        response = await client.post("/v1/predictions", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status


async def test_models_are_listed_with_honest_scores(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200, response.text
    models = {m["name"]: m for m in response.json()["data"]}
    assert set(models) == {"baseline", "rsi-tilt", "pairs-only"}
    baseline = models["baseline"]
    assert baseline["serving"] and baseline["instrument"] == ETH
    scores = baseline["scores"]
    for key in ("auc", "log_loss", "brier", "hit_rate", "strategy_return", "hold_return",
                "log_loss_base_rate"):  # fmt: skip
        assert isinstance(scores[key], float), key
    assert baseline["window_start"] < scores["oos_start"] <= baseline["window_end"]
    assert models["rsi-tilt"]["scores"] is None and models["rsi-tilt"]["instrument"] is None
    only = await client.get("/v1/models", params={"name": "rsi-tilt"})
    assert [m["name"] for m in only.json()["data"]] == ["rsi-tilt"]


async def test_a_model_error_fails_its_batch_and_the_service_stays_up(
    client: httpx.AsyncClient,
) -> None:
    broken = await client.get(f"/v1/predictions/{ETH}", params={"model": "pairs-only"})
    assert broken.status_code == 500
    assert broken.json()["type"].endswith("/model-error")
    assert (await client.get(f"/v1/predictions/{ETH}")).status_code == 200


async def test_predictions_channel_name() -> None:
    assert normalize_channel("predictions:BINANCE:eth-btc") == f"predictions:{ETH}"


async def test_a_full_queue_answers_503_with_retry_after(prepared: Path) -> None:
    async with _app(prepared, "busy.db", ml_queue_size=1, ml_batch_size=1,
                    ml_batch_wait_ms=0) as client:  # fmt: skip
        responses = await asyncio.gather(*(client.get(f"/v1/predictions/{ETH}") for _ in range(40)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["type"].endswith("/overloaded")
        # Once the burst is over, requests succeed again.
        assert (await client.get(f"/v1/predictions/{ETH}")).status_code == 200
