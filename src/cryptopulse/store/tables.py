"""SQLAlchemy Core tables. Portable between SQLite and PostgreSQL (the migrations say so)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

instruments = Table(
    "instruments",
    metadata,
    Column("instrument", String(64), primary_key=True),
    Column("exchange", String(32), nullable=False),
    Column("base", String(20), nullable=False),
    Column("quote", String(20), nullable=False),
    Column("source", String(16), nullable=False),
    Column("first_seen", BigInteger, nullable=False),
)

candles = Table(
    "candles",
    metadata,
    Column("instrument", String(64), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("volume", Float, nullable=False),
    Column("quote_volume", Float, nullable=False),
    Column("trades", Integer, nullable=False),
    Column("closed", Boolean, nullable=False),
)

trades = Table(
    "trades",
    metadata,
    Column("instrument", String(64), primary_key=True),
    Column("trade_id", String(64), primary_key=True),
    Column("time", BigInteger, nullable=False),
    Column("price", Float, nullable=False),
    Column("size", Float, nullable=False),
    Column("side", String(4), nullable=False),
    Column("received", BigInteger, nullable=False),
    Index("ix_trades_instrument_time", "instrument", "time"),
)
