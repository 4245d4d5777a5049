"""Monthly range partitions of `candles` on PostgreSQL (SQLite has one plain table).

Migration 0004 turns `candles` into a table partitioned by range on `open_time` with a
DEFAULT partition; this module creates a partition per UTC month, from last month to
`ahead` months ahead, and moves any month that landed in the default partition (history
imported from years ago, or a service that did not run for months) into its own
partition. The service runs it at start and daily; `cryptopulse migrate` runs it too.
Concurrent runs (several ingest shards) serialize on an advisory lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from cryptopulse.runtime import Services
    from cryptopulse.store.sql import SQLStore

__all__ = [
    "ensure",
    "ensure_partitions",
    "list_partitions",
    "maintain",
    "month_bounds",
    "partition_name",
]

log = logging.getLogger(__name__)

TABLE = "candles"
DEFAULT = "candles_default"
_LOCK_KEY = 0x63616E646C6573  # "candles"
DAY_S = 86_400.0


def _month(ms: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.year, moment.month


def _start_ms(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def month_bounds(ms: int) -> tuple[int, int]:
    """[first ms, first ms of the next month) of the UTC month holding `ms`."""
    year, month = _month(ms)
    return _start_ms(year, month), _start_ms(*_shift(year, month, 1))


def partition_name(ms: int) -> str:
    year, month = _month(ms)
    return f"{TABLE}_p{year:04d}{month:02d}"


def _months(first_ms: int, last_ms: int) -> Iterator[tuple[int, int]]:
    lo, _ = month_bounds(first_ms)
    while lo <= last_ms:
        hi = month_bounds(lo)[1]
        yield lo, hi
        lo = hi


def _is_partitioned(conn: Connection) -> bool:
    kind = conn.execute(
        text("SELECT relkind::text FROM pg_class WHERE relname = :t AND relkind IN ('p', 'r')"),
        {"t": TABLE},
    ).scalar()
    return kind == "p"


def _existing(conn: Connection) -> set[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"
        ),
        {"t": TABLE},
    )
    return {row[0] for row in rows}


def _create(conn: Connection, lo: int, hi: int) -> str:
    """Create the month [lo, hi), moving its rows out of the default partition first
    (attaching a range the default holds rows of would fail)."""
    name = partition_name(lo)
    conn.execute(text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    bounds = {"lo": lo, "hi": hi}
    move = (
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE open_time >= :lo AND open_time < :hi "  # noqa: S608
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
    )
    conn.execute(text(move), bounds)
    # Bounds are integers computed here, never user input.
    conn.execute(
        text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})")
    )
    return name


def ensure(conn: Connection, now_ms: int, ahead: int = 3, behind: int = 1) -> list[str]:
    """Create the missing monthly partitions (sync; PostgreSQL). Returns their names."""
    if not _is_partitioned(conn):
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    have = _existing(conn)
    year, month = _month(now_ms)
    wanted = dict(_months(_start_ms(*_shift(year, month, -behind)), _start_ms(year, month)))
    wanted.update(_months(_start_ms(year, month), _start_ms(*_shift(year, month, ahead))))
    span = f"SELECT min(open_time), max(open_time) FROM {DEFAULT}"  # noqa: S608 (constant)
    low, high = conn.execute(text(span)).one()
    if low is not None:
        wanted.update(_months(int(low), int(high)))
    created = []
    for lo in sorted(wanted):
        if partition_name(lo) not in have:
            created.append(_create(conn, lo, wanted[lo]))
    return created


async def ensure_partitions(store: SQLStore, now_ms: int, ahead: int = 3) -> list[str]:
    """`ensure` over the store's engine; a no-op on SQLite."""
    if store.dialect != "postgresql":
        return []
    async with store.engine.begin() as conn:
        created: list[str] = await conn.run_sync(ensure, now_ms, ahead)
    if created:
        log.info("created candle partitions %s", ", ".join(created))
    return created


async def list_partitions(store: SQLStore) -> list[str]:
    """Names of the partitions of `candles` (empty on SQLite)."""
    if store.dialect != "postgresql":
        return []
    async with store.engine.connect() as conn:
        names: set[str] = await conn.run_sync(_existing)
    return sorted(names)


async def maintain(services: Services) -> None:
    """Supervisor: partitions ahead at start and then daily (retried in a minute on error)."""
    from cryptopulse.sources.base import now_ms

    while True:
        try:
            await ensure_partitions(
                services.store, now_ms(), services.settings.partitions_ahead_months
            )
            delay = DAY_S
        except Exception:
            log.exception("creating candle partitions failed; retrying in 60 s")
            delay = 60.0
        await asyncio.sleep(delay)
