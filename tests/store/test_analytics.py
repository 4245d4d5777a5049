"""Analytics history tables on SQLite and PostgreSQL: migration, upserts, pages, anchors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, inspect

from cryptopulse.domain.models import Candle
from cryptopulse.store import SQLStore
from cryptopulse.store.analytics import AnalyticsStore, GradeRow, SectorRow, SignalRow

STEP = 300_000


def make_candle(
    open_time: int,
    close: float = 1.0,
    closed: bool = True,
    instrument: str = "binance:ETH-BTC",
    interval: str = "5m",
) -> Candle:
    return Candle(
        instrument, interval, open_time, close, close, close, close, 1.0, close, 0, closed
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[AnalyticsStore]:
    sql = SQLStore(database_url)
    await sql.migrate()
    yield AnalyticsStore(sql)
    await sql.close()


async def test_migration_creates_the_analytics_tables(store: AnalyticsStore) -> None:
    def tables(sync_conn: Connection) -> set[str]:
        return set(inspect(sync_conn).get_table_names())

    async with store.store.engine.connect() as conn:
        names = await conn.run_sync(tables)
    assert {"signal_history", "grade_history", "sector_history", "candles"} <= names


async def test_signal_upserts_are_idempotent_and_paged_by_time(store: AnalyticsStore) -> None:
    rows = [SignalRow("binance:ETH-BTC", "5m", i * STEP, "bullish", 0.5, "trend") for i in range(5)]
    await store.upsert_signals(rows)
    await store.upsert_signals([SignalRow("binance:ETH-BTC", "5m", 0, "bearish", 0.9, "breakout")])
    await store.upsert_signals([SignalRow("binance:ETH-BTC", "1h", 0, "neutral", 0.0, "none")])
    found = await store.get_signals("binance:ETH-BTC", "5m", limit=10)
    assert [r.time for r in found] == [i * STEP for i in range(5)]
    assert (found[0].state, found[0].strength, found[0].rule) == ("bearish", 0.9, "breakout")
    newest = await store.get_signals(
        "binance:ETH-BTC", "5m", end=3 * STEP, limit=2, descending=True
    )
    assert [r.time for r in newest] == [3 * STEP, 2 * STEP]


async def test_grades_keep_nulls_and_ranges(store: AnalyticsStore) -> None:
    await store.upsert_grades(
        [GradeRow("ETH", t, "binance:ETH-BTC", 50.0 + t, None) for t in range(3)]
    )
    rows = await store.get_grades("ETH", start=1, end=2)
    assert [(r.time, r.trader, r.investor) for r in rows] == [(1, 51.0, None), (2, 52.0, None)]
    assert await store.get_grades("BTC") == []


async def test_last_sector_points_are_the_anchors(store: AnalyticsStore) -> None:
    await store.upsert_sectors(
        [SectorRow("l1", t, 100.0 + t, None) for t in range(4)]
        + [SectorRow("memes", 7, 90.0, 80.0)]
    )
    anchors = await store.last_sector_points()
    assert anchors == {
        "l1": SectorRow("l1", 3, 103.0, None),
        "memes": SectorRow("memes", 7, 90.0, 80.0),
    }
    assert [r.time for r in await store.get_sector_history("l1", limit=2, descending=True)] == [
        3,
        2,
    ]


async def test_candle_queries_see_closed_candles_only(store: AnalyticsStore) -> None:
    await store.store.upsert_candles(
        [make_candle(i * STEP, float(i + 1)) for i in range(6)]
        + [make_candle(6 * STEP, closed=False)]
        + [make_candle(0, instrument="ETH-BTC"), make_candle(0, interval="1h")]
    )
    assert await store.candle_instruments("5m") == {"binance:ETH-BTC": 6, "ETH-BTC": 1}
    recent = await store.recent_candles("binance:ETH-BTC", "5m", 3)
    assert [c.open_time for c in recent] == [3 * STEP, 4 * STEP, 5 * STEP]
    first = await store.candles_between("binance:ETH-BTC", "5m", STEP, None, 2, newest=False)
    assert [c.close for c in first] == [2.0, 3.0]
    last = await store.candles_between("binance:ETH-BTC", "5m", None, 4 * STEP, 2)
    assert [c.close for c in last] == [4.0, 5.0]
