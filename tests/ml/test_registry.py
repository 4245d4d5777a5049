"""The model registry (store/ml.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from cryptopulse.store.ml import MLStore, NewModel
from cryptopulse.store.sql import SQLStore


def new_model(
    name: str = "m", instrument: str | None = None, blob: bytes = b"\x00\x01"
) -> NewModel:
    return NewModel(name=name, kind="onnx", instrument=instrument, interval="5m", horizon=12,
                    feature_set="cp-v1", features=("rsi", "ret_1"), onnx=blob, created=1,
                    scores={"auc": 0.51, "samples": 10} if name == "baseline" else None,
                    )  # fmt: skip


async def test_versions_bytes_and_what_is_served(database_url: str) -> None:
    store = SQLStore(database_url)
    await store.migrate()
    try:
        registry = MLStore(store)
        assert await registry.latest_id() == 0
        first = await registry.add(new_model("baseline", "binance:ETH-BTC", b"v1"))
        second = await registry.add(new_model("baseline", "binance:ETH-BTC", b"\x00" * 70_000))
        other = await registry.add(new_model("mine"))
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert first.features == ("rsi", "ret_1") and first.scores == {"auc": 0.51, "samples": 10}
        assert other.instrument is None and other.scores is None
        assert await registry.latest_id() == other.id
        assert [m.id for m in await registry.current()] == [second.id, other.id]
        assert [m.id for m in await registry.versions("baseline")] == [second.id, first.id]
        got = await registry.get(second.id)
        assert got is not None and got[1] == b"\x00" * 70_000
        assert await registry.get(9999) is None
        assert await registry.get_many([first.id, other.id]) == {
            first.id: b"v1",
            other.id: b"\x00\x01",
        }
    finally:
        await store.close()


async def test_concurrent_adds_get_distinct_versions(database_url: str) -> None:
    store = SQLStore(database_url)
    await store.migrate()
    try:
        registry = MLStore(store)
        added = await asyncio.gather(*(registry.add(new_model("race")) for _ in range(4)))
        assert sorted(m.version for m in added) == [1, 2, 3, 4]
    finally:
        await store.close()
