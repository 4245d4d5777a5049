"""The SQL store on SQLite and PostgreSQL: migrations, upserts, queries, paging, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, inspect

from cryptopulse.domain.models import Candle, Trade
from cryptopulse.store import SQLStore, StoreWriter


def make_trade(
    trade_id: str,
    time: int,
    price: float = 100.0,
    size: float = 1.0,
    instrument: str = "coinbase:BTC-USD",
) -> Trade:
    return Trade(instrument, trade_id, price, size, "buy", time, time + 5)


def make_candle(
    open_time: int,
    close: float = 10.0,
    closed: bool = True,
    instrument: str = "coinbase:BTC-USD",
    interval: str = "1m",
) -> Candle:
    return Candle(instrument, interval, open_time, 9.0, 11.0, 8.0, close, 2.0, 20.0, 3, closed)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    store = SQLStore(database_url)
    await store.migrate()
    yield store
    await store.close()


async def test_migrations_create_the_schema_and_are_idempotent(store: SQLStore) -> None:
    await store.migrate()  # a second run is a no-op

    def tables(sync_conn: Connection) -> set[str]:
        return set(inspect(sync_conn).get_table_names())

    async with store.engine.connect() as conn:
        names = await conn.run_sync(tables)
    assert {"candles", "trades", "instruments", "alembic_version"} <= names


async def test_candle_upsert_amends_the_same_candle(store: SQLStore) -> None:
    await store.upsert_candles([make_candle(60_000, close=10.0, closed=False)])
    await store.upsert_candles([make_candle(60_000, close=12.5, closed=True)])
    rows = await store.get_candles(
        "coinbase:BTC-USD", "1m", start=None, end=None, limit=10, descending=False
    )
    assert len(rows) == 1
    assert rows[0].close == 12.5 and rows[0].closed is True


async def test_candle_ranges_and_order(store: SQLStore) -> None:
    await store.upsert_candles([make_candle(t * 60_000, close=float(t)) for t in range(10)])
    await store.upsert_candles([make_candle(0, instrument="binance:BTC-USDT")])
    rows = await store.get_candles(
        "coinbase:BTC-USD", "1m", start=120_000, end=300_000, limit=100, descending=False
    )
    assert [c.open_time for c in rows] == [120_000, 180_000, 240_000, 300_000]
    newest = await store.get_candles(
        "coinbase:BTC-USD", "1m", start=None, end=None, limit=3, descending=True
    )
    assert [c.close for c in newest] == [9.0, 8.0, 7.0]


async def test_trades_are_inserted_once_and_paged_newest_first(store: SQLStore) -> None:
    trades = [make_trade(str(i), 1_000 + i // 2) for i in range(10)]
    await store.insert_trades(trades)
    await store.insert_trades(trades[:5])  # a replayed batch changes nothing
    assert await store.count_trades() == 10
    first = await store.get_trades("coinbase:BTC-USD", limit=4)
    last = first[-1]
    rest = await store.get_trades("coinbase:BTC-USD", limit=100, before=(last.time, last.trade_id))
    ids = [t.trade_id for t in first + rest]
    assert sorted(ids) == sorted(str(i) for i in range(10))
    assert len(ids) == len(set(ids))
    times = [t.time for t in first + rest]
    assert times == sorted(times, reverse=True)


async def test_batches_larger_than_one_driver_call_round_trip_exactly(store: SQLStore) -> None:
    """Rows go to the driver as plain values, thousands per call: every field survives."""
    trades = [
        Trade("coinbase:ETH-USD", f"t{i}", 1234.5 + i / 8, 0.001 * i, "sell" if i % 3 else "buy",
              1_700_000_000_000 + i, 1_700_000_000_007 + i)
        for i in range(4_500)
    ]  # fmt: skip
    await store.insert_trades(trades + trades[:700])  # duplicates within one batch, too
    assert await store.count_trades("coinbase:ETH-USD") == 4_500
    page = await store.get_trades("coinbase:ETH-USD", limit=4_500)
    assert sorted(page, key=lambda t: t.time) == trades
    candles = [make_candle(t * 60_000, close=t + 0.25, closed=t % 2 == 0) for t in range(2_500)]
    await store.upsert_candles(candles)
    await store.upsert_candles([make_candle(60_000, close=99.0, closed=True)])
    rows = await store.get_candles(
        "coinbase:BTC-USD", "1m", start=None, end=None, limit=5_000, descending=False
    )
    assert rows == [*candles[:1], make_candle(60_000, close=99.0, closed=True), *candles[2:]]


async def test_prune_trades_keeps_recent_ones(store: SQLStore) -> None:
    await store.insert_trades([make_trade(str(i), i * 1000) for i in range(10)])
    removed = await store.prune_trades(before=5_000)
    assert removed == 5
    assert await store.count_trades() == 5


async def test_instruments_are_recorded_with_their_source(store: SQLStore) -> None:
    await store.record_instruments(["kraken:BTC-USD", "sim:ETH-USD"], "simulated", 1)
    await store.record_instruments(["kraken:BTC-USD"], "live", 2)
    rows = {r.instrument: r for r in await store.list_instruments()}
    assert rows["kraken:BTC-USD"].source == "live"
    assert rows["sim:ETH-USD"].base == "ETH" and rows["sim:ETH-USD"].exchange == "sim"


async def test_writer_batches_and_conflates_candles(store: SQLStore) -> None:
    writer = StoreWriter(store, interval_s=60, batch_size=10_000)
    for close in (1.0, 2.0, 3.0):
        writer.add_candle(make_candle(0, close=close, closed=False))
    writer.add_trade(make_trade("a", 5))
    assert writer.pending == 2  # three amendments of one candle are one row
    await writer.stop()
    rows = await store.get_candles(
        "coinbase:BTC-USD", "1m", start=None, end=None, limit=5, descending=False
    )
    assert [c.close for c in rows] == [3.0]
    assert writer.written_trades == 1 and writer.pending == 0
