"""Monthly candle partitions on PostgreSQL (migration 0004 and the service's upkeep);
on SQLite the same calls are no-ops and candles behave the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from cryptopulse.domain.models import Candle
from cryptopulse.store import SQLStore
from cryptopulse.store.partitions import (
    ensure_partitions,
    list_partitions,
    month_bounds,
    partition_name,
)

NOW = 1_767_225_600_000 + 15 * 86_400_000  # 2026-01-16 UTC
JAN_2018 = 1_515_560_100_000  # 2018-01-10 04:55 UTC, the shared candle data's first bar


def make_candle(open_time: int, close: float = 10.0) -> Candle:
    return Candle("binance:ETH-BTC", "5m", open_time, 9.0, 11.0, 8.0, close, 2.0, 20.0, 3, True)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    store = SQLStore(database_url)
    await store.migrate()
    yield store
    await store.close()


async def rows_in(store: SQLStore, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


def test_month_bounds_and_names() -> None:
    lo, hi = month_bounds(NOW)
    assert lo == 1_767_225_600_000 and hi == lo + 31 * 86_400_000
    assert partition_name(NOW) == "candles_p202601"
    assert month_bounds(1_769_903_999_999)[0] == lo  # the last ms of January
    assert partition_name(month_bounds(NOW)[1]) == "candles_p202602"


async def test_partitions_are_created_ahead_and_idempotent(store: SQLStore) -> None:
    created = await ensure_partitions(store, NOW, ahead=2)
    names = await list_partitions(store)
    if store.dialect == "sqlite":
        assert created == [] and names == []
        return
    expected = {"candles_p202512", "candles_p202601", "candles_p202602", "candles_p202603"}
    assert expected <= set(names) and "candles_default" in names
    assert await ensure_partitions(store, NOW, ahead=2) == []


async def test_upserts_route_to_month_partitions(store: SQLStore) -> None:
    await ensure_partitions(store, NOW, ahead=1)
    lo, hi = month_bounds(NOW)
    await store.upsert_candles([make_candle(lo), make_candle(hi - 300_000), make_candle(hi)])
    await store.upsert_candles([make_candle(lo, close=12.0)])  # ON CONFLICT still amends
    rows = await store.get_candles(
        "binance:ETH-BTC", "5m", start=None, end=None, limit=10, descending=False
    )
    assert [c.open_time for c in rows] == [lo, hi - 300_000, hi]
    assert rows[0].close == 12.0
    if store.dialect == "postgresql":
        assert await rows_in(store, "candles_p202601") == 2
        assert await rows_in(store, "candles_p202602") == 1
        assert await rows_in(store, "candles_default") == 0


async def test_old_history_moves_from_the_default_partition(store: SQLStore) -> None:
    old = [make_candle(JAN_2018 + i * 300_000, close=float(i)) for i in range(12 * 24 * 25)]
    await store.upsert_candles(old)  # 2018-01-10 .. 2018-02-04: two months, no partition yet
    await ensure_partitions(store, NOW)
    rows = await store.get_candles(
        "binance:ETH-BTC", "5m", start=None, end=None, limit=1000, descending=True
    )
    assert len(rows) == 1000 and rows[0].close == float(len(old) - 1)
    if store.dialect == "postgresql":
        assert await rows_in(store, "candles_default") == 0
        january = await rows_in(store, "candles_p201801")
        assert january + await rows_in(store, "candles_p201802") == len(old)
        assert january > 0
