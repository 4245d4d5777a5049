"""Instruments, candles and trades.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("base", sa.String(20), nullable=False),
        sa.Column("quote", sa.String(20), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("instrument", name="pk_instruments"),
    )
    op.create_table(
        "candles",
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("open_time", sa.BigInteger, nullable=False),
        sa.Column("open", sa.Float, nullable=False),
        sa.Column("high", sa.Float, nullable=False),
        sa.Column("low", sa.Float, nullable=False),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("quote_volume", sa.Float, nullable=False),
        sa.Column("trades", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("instrument", "interval", "open_time", name="pk_candles"),
    )
    op.create_table(
        "trades",
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("size", sa.Float, nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("instrument", "trade_id", name="pk_trades"),
    )
    op.create_index("ix_trades_instrument_time", "trades", ["instrument", "time"])


def downgrade() -> None:
    op.drop_index("ix_trades_instrument_time", table_name="trades")
    op.drop_table("trades")
    op.drop_table("candles")
    op.drop_table("instruments")
