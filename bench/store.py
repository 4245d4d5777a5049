"""Batched trade writes: the store's path vs SQLAlchemy Core and the bare driver.

    python -m bench store [--rows 20000] [--repeats 5] [--postgres URL]

The rows are the real captures' trades (bench/_captures.py, parsed by our parsers), their
ids made unique per write. Every contender inserts the same rows, in one transaction, into
the migrated `trades` table (primary key and time index, ``ON CONFLICT DO NOTHING``),
emptied before each write so that every contender writes into a table of the same size:

- **ours**: ``SQLStore.insert_trades``, the writer's call: a statement compiled once by
  SQLAlchemy, rows handed to the driver as tuples (store/sql.py);
- **SQLAlchemy Core** (the typical peer, and the store's path until stop 14):
  ``conn.execute(insert(trades).on_conflict_do_nothing(...), [dict, ...])`` in chunks of
  500 rows, SQLAlchemy processing every row's parameters;
- **driver only** (the ceiling): the same SQL through the bare driver, no SQLAlchemy:
  the stdlib ``sqlite3`` ``executemany`` (synchronous, on the calling thread), and
  asyncpg's ``executemany`` on PostgreSQL.

Reported per backend: CPU µs per row of this process (all its threads: aiosqlite writes
on a thread of its own) and wall µs per row, medians and spread over the repetitions,
the contenders interleaved in each.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cryptopulse.domain.models import Trade
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import trades as trades_table

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
_SQL = (
    "INSERT INTO trades (instrument, trade_id, time, price, size, side, received) "
    "VALUES ({}) ON CONFLICT (instrument, trade_id) DO NOTHING"
)


def capture_trades(count: int) -> list[Trade]:
    """`count` trades from the captures, replayed in laps."""
    from bench._captures import laps, load_trade_frames
    from bench.ingest import _parsers

    parsers = _parsers()
    out: list[Trade] = []
    for frame in laps(load_trade_frames(), 1):
        for event in parsers[frame.exchange](frame.raw, frame.received_ms):
            if isinstance(event, Trade):
                out.append(event)
    return [out[i % len(out)] for i in range(count)]


def batch(template: Sequence[Trade], tag: str) -> list[Trade]:
    return [
        Trade(t.instrument, f"{tag}-{i}", t.price, t.size, t.side, t.time, t.received)
        for i, t in enumerate(template)
    ]


def _dicts(rows: Sequence[Trade]) -> list[dict[str, Any]]:
    return [
        {"instrument": t.instrument, "trade_id": t.trade_id, "time": t.time, "price": t.price,
         "size": t.size, "side": t.side, "received": t.received}
        for t in rows
    ]  # fmt: skip


def _tuples(rows: Sequence[Trade]) -> list[tuple[Any, ...]]:
    return [(t.instrument, t.trade_id, t.time, t.price, t.size, t.side, t.received) for t in rows]


async def sqlalchemy_core(store: SQLStore, rows: Sequence[Trade]) -> None:
    """The store's path before stop 14."""
    stmt = store._insert(trades_table).on_conflict_do_nothing(
        index_elements=["instrument", "trade_id"]
    )
    values = _dicts(rows)
    async with store.engine.begin() as conn:
        for i in range(0, len(values), 500):
            await conn.execute(stmt, values[i : i + 500])


def sqlite_driver(path: str) -> Callable[[Sequence[Trade]], Awaitable[None]]:
    async def write(rows: Sequence[Trade]) -> None:
        with sqlite3.connect(path) as conn:  # one transaction, committed on exit
            conn.executemany(_SQL.format(", ".join("?" * 7)), _tuples(rows))
        conn.close()

    return write


def asyncpg_driver(dsn: str) -> Callable[[Sequence[Trade]], Awaitable[None]]:
    async def write(rows: Sequence[Trade]) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                marks = ", ".join(f"${i}" for i in range(1, 8))
                await conn.executemany(_SQL.format(marks), _tuples(rows))
        finally:
            await conn.close()

    return write


async def measure(url: str, template: Sequence[Trade], repeats: int) -> dict[str, list[float]]:
    store = SQLStore(url)
    await store.migrate()
    parsed = make_url(url)
    driver = (
        sqlite_driver(parsed.database or "")
        if parsed.get_backend_name() == "sqlite"
        else asyncpg_driver(parsed.set(drivername="postgresql").render_as_string(False))
    )
    contenders: dict[str, Callable[[Sequence[Trade]], Awaitable[None]]] = {
        "ours": store.insert_trades,
        "SQLAlchemy Core": lambda rows: sqlalchemy_core(store, rows),
        "driver only": driver,
    }
    results: dict[str, list[float]] = {f"{n} {k}": [] for n in contenders for k in ("cpu", "wall")}
    try:
        for rep in range(repeats + 1):  # the first round warms up and is not kept
            for name, write in contenders.items():
                async with store.engine.begin() as conn:
                    await conn.execute(text("DELETE FROM trades"))
                rows = batch(template, f"{rep}{name[:2]}")
                cpu, wall = time.process_time(), time.perf_counter()
                await write(rows)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                assert await store.count_trades() == len(rows), name
                if rep:
                    results[f"{name} cpu"].append(cpu / len(rows) * 1e6)
                    results[f"{name} wall"].append(wall / len(rows) * 1e6)
    finally:
        await store.close()
    return results


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def table(backend: str, results: dict[str, list[float]]) -> list[str]:
    ceiling = statistics.median(results["driver only cpu"])
    peer = statistics.median(results["SQLAlchemy Core cpu"])
    lines = []
    for name in ("ours", "SQLAlchemy Core", "driver only"):
        cpu = statistics.median(results[f"{name} cpu"])
        lines.append(
            f"| {backend} | {name} | {_cell(results[f'{name} cpu'])} | "
            f"{_cell(results[f'{name} wall'])} | {ceiling / cpu:.2f}× | {peer / cpu:.2f}× |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", default=POSTGRES, help="'' to leave PostgreSQL out")
    args = parser.parse_args(argv)
    template = capture_trades(args.rows)
    print(f"{args.rows:,} capture trades per write, {args.repeats} repetitions")
    print("| backend | contender | CPU µs per row | wall µs per row | vs driver only (CPU) "
          "| vs SQLAlchemy Core (CPU) |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        for line in table("SQLite", asyncio.run(measure(url, template, args.repeats))):
            print(line, flush=True)
    if args.postgres:
        for line in table("PostgreSQL", asyncio.run(_on_fresh_pg(args.postgres, template, args))):
            print(line, flush=True)
    return 0


async def _on_fresh_pg(
    admin_url: str, template: Sequence[Trade], args: argparse.Namespace
) -> dict[str, list[float]]:
    """A database of its own on the server, dropped afterwards."""
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"cp_bench_store_{int(time.time())}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return await measure(url, template, args.repeats)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
