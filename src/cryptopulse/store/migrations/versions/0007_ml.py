"""Prediction models: the versioned registry (built-in baselines and ONNX uploads).

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_models",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("instrument", sa.String(64), nullable=True),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("horizon", sa.Integer, nullable=False),
        sa.Column("feature_set", sa.String(32), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=True),
        sa.Column("window_end", sa.BigInteger, nullable=True),
        sa.Column("scores", sa.Text, nullable=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("onnx", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ml_models"),
        sa.UniqueConstraint("name", "version", name="uq_ml_models_name"),
    )
    op.create_index("ix_ml_models_lookup", "ml_models", ["name", "interval", "instrument"])


def downgrade() -> None:
    op.drop_index("ix_ml_models_lookup", table_name="ml_models")
    op.drop_table("ml_models")
