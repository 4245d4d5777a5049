"""Analytics history: signals, grades and sector index levels (tables and queries).

The tables join the shared `metadata`; migration 0003 creates them on SQLite and
PostgreSQL. Every write is an idempotent upsert keyed by (series, time), so recomputing a
stretch of history after a restart rewrites the same rows instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, Table, func, select

from cryptopulse.domain.models import Candle
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import candles, metadata

__all__ = [
    "AnalyticsStore",
    "GradeRow",
    "SectorRow",
    "SignalRow",
    "grade_history",
    "sector_history",
    "signal_history",
]

signal_history = Table(
    "signal_history",
    metadata,
    Column("instrument", String(64), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("time", BigInteger, primary_key=True),
    Column("state", String(8), nullable=False),
    Column("strength", Float, nullable=False),
    Column("rule", String(64), nullable=False),
)

grade_history = Table(
    "grade_history",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("time", BigInteger, primary_key=True),
    Column("instrument", String(64), nullable=False),
    Column("trader", Float, nullable=True),
    Column("investor", Float, nullable=True),
)

sector_history = Table(
    "sector_history",
    metadata,
    Column("sector", String(40), primary_key=True),
    Column("time", BigInteger, primary_key=True),
    Column("equal_index", Float, nullable=False),
    Column("cap_index", Float, nullable=True),
)

# SQLite caps bound parameters per statement; stay well below it.
_ROWS_PER_STATEMENT = 500


@dataclass(frozen=True, slots=True)
class SignalRow:
    instrument: str
    interval: str
    time: int
    state: str
    strength: float
    rule: str


@dataclass(frozen=True, slots=True)
class GradeRow:
    symbol: str
    time: int
    instrument: str
    trader: float | None
    investor: float | None


@dataclass(frozen=True, slots=True)
class SectorRow:
    sector: str
    time: int
    equal_index: float
    cap_index: float | None


class AnalyticsStore:
    """Queries over the analytics tables, sharing the engine of the market-data store."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    async def _upsert(self, table: Table, keys: list[str], rows: Sequence[Any]) -> None:
        if not rows:
            return
        values = [{c.name: getattr(row, c.name) for c in table.columns} for row in rows]
        stmt = self.store._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={
                c.name: getattr(stmt.excluded, c.name) for c in table.columns if not c.primary_key
            },
        )
        # One writer at a time on SQLite: share the market-data store's write lock.
        async with self.store._write_lock, self.store.engine.begin() as conn:
            for i in range(0, len(values), _ROWS_PER_STATEMENT):
                await conn.execute(stmt, values[i : i + _ROWS_PER_STATEMENT])

    async def upsert_signals(self, rows: Sequence[SignalRow]) -> None:
        await self._upsert(signal_history, ["instrument", "interval", "time"], rows)

    async def upsert_grades(self, rows: Sequence[GradeRow]) -> None:
        await self._upsert(grade_history, ["symbol", "time"], rows)

    async def upsert_sectors(self, rows: Sequence[SectorRow]) -> None:
        await self._upsert(sector_history, ["sector", "time"], rows)

    async def _page(
        self,
        table: Table,
        where: list[Any],
        *,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[Any]:
        time = table.c.time
        query = select(table).where(*where)
        if start is not None:
            query = query.where(time >= start)
        if end is not None:
            query = query.where(time <= end)
        query = query.order_by(time.desc() if descending else time.asc()).limit(limit)
        async with self.store.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def get_signals(
        self,
        instrument: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        descending: bool = False,
    ) -> list[SignalRow]:
        """Stored signals of one series in [start, end], by time."""
        c = signal_history.c
        rows = await self._page(
            signal_history,
            [c.instrument == instrument, c.interval == interval],
            start=start,
            end=end,
            limit=limit,
            descending=descending,
        )
        return [SignalRow(*row) for row in rows]

    async def get_grades(
        self,
        symbol: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        descending: bool = False,
    ) -> list[GradeRow]:
        """Stored grades of one symbol in [start, end], by time."""
        rows = await self._page(
            grade_history,
            [grade_history.c.symbol == symbol],
            start=start,
            end=end,
            limit=limit,
            descending=descending,
        )
        return [GradeRow(*row) for row in rows]

    async def get_sector_history(
        self,
        sector: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
        descending: bool = False,
    ) -> list[SectorRow]:
        """Stored index levels of one sector in [start, end], by time."""
        rows = await self._page(
            sector_history,
            [sector_history.c.sector == sector],
            start=start,
            end=end,
            limit=limit,
            descending=descending,
        )
        return [SectorRow(*row) for row in rows]

    async def last_sector_points(self) -> dict[str, SectorRow]:
        """The newest stored point of every sector (the anchor new levels continue from)."""
        c = sector_history.c
        newest = select(c.sector, func.max(c.time).label("time")).group_by(c.sector).subquery()
        query = select(sector_history).join(
            newest, (c.sector == newest.c.sector) & (c.time == newest.c.time)
        )
        async with self.store.engine.connect() as conn:
            return {row[0]: SectorRow(*row) for row in await conn.execute(query)}

    async def candle_instruments(self, interval: str) -> dict[str, int]:
        """Instruments (venue and composite) with closed candles of `interval`, and how many."""
        c = candles.c
        query = (
            select(c.instrument, func.count())
            .where(c.interval == interval, c.closed.is_(True))
            .group_by(c.instrument)
        )
        async with self.store.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}

    async def recent_candles(self, instrument: str, interval: str, limit: int) -> list[Candle]:
        """The newest `limit` closed candles, oldest first."""
        c = candles.c
        query = (
            select(candles)
            .where(c.instrument == instrument, c.interval == interval, c.closed.is_(True))
            .order_by(c.open_time.desc())
            .limit(limit)
        )
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Candle(*row) for row in reversed(rows)]

    async def candles_between(
        self,
        instrument: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        *,
        newest: bool = True,
    ) -> list[Candle]:
        """Closed candles in [start, end], oldest first: the newest `limit` of them, or the
        oldest `limit` with `newest=False`."""
        c = candles.c
        query = select(candles).where(
            c.instrument == instrument, c.interval == interval, c.closed.is_(True)
        )
        if start is not None:
            query = query.where(c.open_time >= start)
        if end is not None:
            query = query.where(c.open_time <= end)
        query = query.order_by(c.open_time.desc() if newest else c.open_time.asc()).limit(limit)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Candle(*row) for row in (reversed(rows) if newest else rows)]
