"""Candles partitioned by month on open_time (PostgreSQL only; SQLite is unchanged).

The table becomes `PARTITION BY RANGE (open_time)` with a DEFAULT partition; the rows are
copied over and monthly partitions around now are created (the service keeps creating
them ahead, see cryptopulse.store.partitions). The primary key keeps open_time, so
`INSERT ... ON CONFLICT` upserts work unchanged.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import time

from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = """
    instrument VARCHAR(64) NOT NULL,
    interval VARCHAR(8) NOT NULL,
    open_time BIGINT NOT NULL,
    open FLOAT NOT NULL,
    high FLOAT NOT NULL,
    low FLOAT NOT NULL,
    close FLOAT NOT NULL,
    volume FLOAT NOT NULL,
    quote_volume FLOAT NOT NULL,
    trades INTEGER NOT NULL,
    closed BOOLEAN NOT NULL,
    CONSTRAINT pk_candles PRIMARY KEY (instrument, interval, open_time)
"""
# Constant column names: the f-strings below never see input.
_NAMES = "instrument, interval, open_time, open, high, low, close, volume, quote_volume, "
_NAMES += "trades, closed"


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    if not _postgres():
        return
    from cryptopulse.store.partitions import ensure

    op.execute("ALTER TABLE candles RENAME TO candles_plain")
    op.execute("ALTER TABLE candles_plain RENAME CONSTRAINT pk_candles TO pk_candles_plain")
    op.execute(f"CREATE TABLE candles ({_COLUMNS}) PARTITION BY RANGE (open_time)")
    op.execute("CREATE TABLE candles_default PARTITION OF candles DEFAULT")
    op.execute(f"INSERT INTO candles ({_NAMES}) SELECT {_NAMES} FROM candles_plain")  # noqa: S608
    op.execute("DROP TABLE candles_plain")
    ensure(op.get_bind(), time.time_ns() // 1_000_000, ahead=3)


def downgrade() -> None:
    if not _postgres():
        return
    op.execute("ALTER TABLE candles RENAME TO candles_partitioned")
    op.execute(
        "ALTER TABLE candles_partitioned RENAME CONSTRAINT pk_candles TO pk_candles_partitioned"
    )
    op.execute(f"CREATE TABLE candles ({_COLUMNS})")
    copy = f"INSERT INTO candles ({_NAMES}) SELECT {_NAMES} FROM candles_partitioned"  # noqa: S608
    op.execute(copy)
    op.execute("DROP TABLE candles_partitioned CASCADE")
