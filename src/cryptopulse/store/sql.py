"""The SQL store (SQLite or PostgreSQL through SQLAlchemy Core, async)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cryptopulse.domain.instruments import INTERVALS, parse_instrument
from cryptopulse.domain.models import Candle, Trade
from cryptopulse.store.tables import candles, instruments, trades

_CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades", "closed")
# SQLite caps bound parameters per statement (32766 since 3.32); stay well below it.
_ROWS_PER_STATEMENT = 500
# A driver's executemany binds one row at a time (no parameter cap); chunks bound how long
# one call holds the driver.
_ROWS_PER_EXECUTEMANY = 2000
_CANDLE_COLUMNS = ("instrument", "interval", "open_time", *_CANDLE_FIELDS)
_TRADE_COLUMNS = ("instrument", "trade_id", "time", "price", "size", "side", "received")


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """SQL in the driver's own parameter style, and the attribute order of its rows."""

    sql: str
    columns: tuple[str, ...]
    positional: bool

    def values(self, rows: Sequence[Any]) -> list[Any]:
        if self.positional:
            row = attrgetter(*self.columns)
            return [row(r) for r in rows]
        return [{name: getattr(r, name) for name in self.columns} for r in rows]


@dataclass(frozen=True, slots=True)
class InstrumentRow:
    instrument: str
    exchange: str
    base: str
    quote: str
    source: str
    first_seen: int


def _migrations_dir() -> Path:
    return Path(__file__).parent / "migrations"


def migrate(url: str) -> None:
    """Bring the schema at `url` to the newest revision (blocking; call off the event loop)."""
    from alembic import command
    from alembic.config import Config

    _ensure_sqlite_dir(url)
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # "heads": feature migrations branch from the base revision independently.
    command.upgrade(config, "heads")


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SQLStore:
    """History: candles, trades and instruments. Writes are batched by the caller."""

    def __init__(
        self,
        url: str,
        pool_size: int = 5,
        *,
        max_overflow: int = 10,
        pool_timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        command_timeout_s: float | None = None,
    ) -> None:
        self.url = url
        _ensure_sqlite_dir(url)
        backend = make_url(url).get_backend_name()
        self.dialect = backend
        kwargs: dict[str, Any] = {}
        if backend == "postgresql":
            # Bounded waits everywhere, so a database outage is a quick error (REST 503),
            # and pre-ping so connections broken by a restart are replaced by themselves.
            connect_args: dict[str, float] = {}
            if connect_timeout_s is not None:
                connect_args["timeout"] = connect_timeout_s
            if command_timeout_s is not None:
                connect_args["command_timeout"] = command_timeout_s
            kwargs.update(
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout_s,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLite allows one writer at a time; serialize our own writes instead of retrying.
        self._write_lock = asyncio.Lock()
        self._candles_sql: _DriverStatement | None = None
        self._trades_sql: _DriverStatement | None = None

    async def migrate(self) -> None:
        await asyncio.to_thread(migrate, self.url)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))
        return True

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _driver_statement(self, stmt: Any, columns: Sequence[str]) -> _DriverStatement:
        """`stmt` compiled once for this engine's driver, with every column of `columns`
        a parameter: the hot batch writes then hand the driver plain rows (SQLAlchemy's
        per-row parameter processing cost 10-20 µs a row; docs/decisions.md)."""
        compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(columns))
        order = compiled.positiontup
        if order is None:  # a driver with named parameters: rows are dicts
            return _DriverStatement(str(compiled), tuple(columns), positional=False)
        return _DriverStatement(str(compiled), tuple(order), positional=True)

    async def upsert_candles(self, rows: Sequence[Candle]) -> None:
        if not rows:
            return
        if self._candles_sql is None:
            stmt = self._insert(candles)
            stmt = stmt.on_conflict_do_update(
                index_elements=["instrument", "interval", "open_time"],
                set_={name: getattr(stmt.excluded, name) for name in _CANDLE_FIELDS},
            )
            self._candles_sql = self._driver_statement(stmt, _CANDLE_COLUMNS)
        await self._execute_rows(self._candles_sql, rows)

    async def insert_trades(self, rows: Sequence[Trade]) -> None:
        if not rows:
            return
        if self._trades_sql is None:
            stmt = self._insert(trades).on_conflict_do_nothing(
                index_elements=["instrument", "trade_id"]
            )
            self._trades_sql = self._driver_statement(stmt, _TRADE_COLUMNS)
        await self._execute_rows(self._trades_sql, rows)

    async def _execute_rows(self, statement: _DriverStatement, rows: Sequence[Any]) -> None:
        """Every object of `rows` as one row of `statement` (its attributes named like the
        columns), in one transaction, `_ROWS_PER_EXECUTEMANY` rows per driver call."""
        values = statement.values(rows)
        async with self._write_lock, self.engine.begin() as conn:
            for i in range(0, len(values), _ROWS_PER_EXECUTEMANY):
                await conn.exec_driver_sql(statement.sql, values[i : i + _ROWS_PER_EXECUTEMANY])

    async def record_instruments(self, names: Sequence[str], source: str, now: int) -> None:
        if not names:
            return
        values = []
        for name in names:
            inst = parse_instrument(name)
            values.append(
                {
                    "instrument": name,
                    "exchange": inst.exchange or "",
                    "base": inst.base,
                    "quote": inst.quote,
                    "source": source,
                    "first_seen": now,
                }
            )
        stmt = self._insert(instruments)
        stmt = stmt.on_conflict_do_update(
            index_elements=["instrument"], set_={"source": stmt.excluded.source}
        )
        await self._execute_chunked(stmt, values)

    async def _execute_chunked(self, stmt: Any, values: list[dict[str, Any]]) -> None:
        async with self._write_lock, self.engine.begin() as conn:
            for i in range(0, len(values), _ROWS_PER_STATEMENT):
                await conn.execute(stmt, values[i : i + _ROWS_PER_STATEMENT])

    async def list_instruments(self) -> list[InstrumentRow]:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(instruments).order_by(instruments.c.instrument))
            return [InstrumentRow(*row) for row in result]

    async def get_candles(
        self,
        instrument: str,
        interval: str,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[Candle]:
        """Candles in [start, end], oldest first when ascending; at most `limit`."""
        c = candles.c
        query = select(candles).where(c.instrument == instrument, c.interval == interval)
        if start is not None:
            query = query.where(c.open_time >= start)
        if end is not None:
            query = query.where(c.open_time <= end)
        order = c.open_time.desc() if descending else c.open_time.asc()
        query = query.order_by(order).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Candle(*row) for row in rows]

    async def get_trades(
        self, instrument: str, *, limit: int, before: tuple[int, str] | None = None
    ) -> list[Trade]:
        """The newest trades (newest first), optionally strictly before (time, trade_id)."""
        t = trades.c
        query = select(t.instrument, t.trade_id, t.price, t.size, t.side, t.time, t.received).where(
            t.instrument == instrument
        )
        if before is not None:
            time, trade_id = before
            query = query.where(or_(t.time < time, and_(t.time == time, t.trade_id < trade_id)))
        query = query.order_by(t.time.desc(), t.trade_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Trade(*row) for row in rows]

    async def count_candles(self, instrument: str) -> dict[str, int]:
        """Candles stored per interval for one instrument, in interval order."""
        c = candles.c
        query = (
            select(c.interval, func.count()).where(c.instrument == instrument).group_by(c.interval)
        )
        async with self.engine.connect() as conn:
            found = {row[0]: int(row[1]) for row in await conn.execute(query)}
        return {i: found[i] for i in INTERVALS if i in found}

    async def count_trades(self, instrument: str | None = None) -> int:
        query = select(func.count()).select_from(trades)
        if instrument is not None:
            query = query.where(trades.c.instrument == instrument)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def prune_trades(self, before: int) -> int:
        async with self._write_lock, self.engine.begin() as conn:
            result = await conn.execute(trades.delete().where(trades.c.time < before))
            return int(result.rowcount)
