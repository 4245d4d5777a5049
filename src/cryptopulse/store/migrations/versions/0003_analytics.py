"""Analytics history: signals, grades, sector index levels.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_history",
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("strength", sa.Float, nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("instrument", "interval", "time", name="pk_signal_history"),
    )
    op.create_table(
        "grade_history",
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("trader", sa.Float, nullable=True),
        sa.Column("investor", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("symbol", "time", name="pk_grade_history"),
    )
    op.create_table(
        "sector_history",
        sa.Column("sector", sa.String(40), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("equal_index", sa.Float, nullable=False),
        sa.Column("cap_index", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("sector", "time", name="pk_sector_history"),
    )


def downgrade() -> None:
    op.drop_table("sector_history")
    op.drop_table("grade_history")
    op.drop_table("signal_history")
