"""On-chain history: block metrics, hour/day rollups, token transfers and supplies.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def _addr(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(42), nullable=False)


def upgrade() -> None:
    op.create_table(
        "onchain_blocks",
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("parent_hash", sa.String(66), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("tx_count", sa.Integer, nullable=False),
        sa.Column("active_addresses", sa.Integer, nullable=False),
        sa.Column("gas_used", sa.BigInteger, nullable=False),
        sa.Column("gas_limit", sa.BigInteger, nullable=False),
        sa.Column("utilisation", sa.Float, nullable=False),
        sa.Column("base_fee_gwei", sa.Float, nullable=True),
        sa.Column("priority_fee_gwei", sa.Float, nullable=True),
        sa.Column("priority_fee_median_gwei", sa.Float, nullable=True),
        sa.Column("deployments", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("chain", "number", name="pk_onchain_blocks"),
    )
    op.create_index("ix_onchain_blocks_chain_time", "onchain_blocks", ["chain", "time"])
    op.create_table(
        "onchain_rollups",
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("open_time", sa.BigInteger, nullable=False),
        sa.Column("blocks", sa.Integer, nullable=False),
        sa.Column("tx_count", sa.BigInteger, nullable=False),
        sa.Column("active_addresses", sa.BigInteger, nullable=False),
        sa.Column("gas_used", sa.BigInteger, nullable=False),
        sa.Column("gas_limit", sa.BigInteger, nullable=False),
        sa.Column("utilisation", sa.Float, nullable=False),
        sa.Column("base_fee_gwei", sa.Float, nullable=True),
        sa.Column("priority_fee_gwei", sa.Float, nullable=True),
        sa.Column("deployments", sa.Integer, nullable=False),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("chain", "interval", "open_time", name="pk_onchain_rollups"),
    )
    op.create_table(
        "onchain_token_blocks",
        sa.Column("chain", sa.String(32), nullable=False),
        _addr("token"),
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("transfers", sa.Integer, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("senders", sa.Integer, nullable=False),
        sa.Column("receivers", sa.Integer, nullable=False),
        sa.Column("inflow", sa.Float, nullable=False),
        sa.Column("outflow", sa.Float, nullable=False),
        sa.Column("whales", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("chain", "token", "number", name="pk_onchain_token_blocks"),
    )
    op.create_table(
        "onchain_token_rollups",
        sa.Column("chain", sa.String(32), nullable=False),
        _addr("token"),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("open_time", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("transfers", sa.BigInteger, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("senders", sa.BigInteger, nullable=False),
        sa.Column("receivers", sa.BigInteger, nullable=False),
        sa.Column("inflow", sa.Float, nullable=False),
        sa.Column("outflow", sa.Float, nullable=False),
        sa.Column("whales", sa.Integer, nullable=False),
        sa.Column("senders_sketch", sa.LargeBinary, nullable=False),
        sa.Column("receivers_sketch", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint(
            "chain", "token", "interval", "open_time", name="pk_onchain_token_rollups"
        ),
    )
    op.create_table(
        "onchain_transfers",
        sa.Column("chain", sa.String(32), nullable=False),
        _addr("token"),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        _addr("sender"),
        _addr("receiver"),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("amount_raw", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint(
            "chain", "token", "block_number", "log_index", name="pk_onchain_transfers"
        ),
    )
    op.create_index("ix_onchain_transfers_time", "onchain_transfers", ["chain", "time"])
    op.create_table(
        "onchain_supply",
        sa.Column("chain", sa.String(32), nullable=False),
        _addr("token"),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("total_supply", sa.Float, nullable=False),
        sa.Column("total_supply_raw", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("chain", "token", name="pk_onchain_supply"),
    )


def downgrade() -> None:
    for table in (
        "onchain_supply",
        "onchain_transfers",
        "onchain_token_rollups",
        "onchain_token_blocks",
        "onchain_rollups",
        "onchain_blocks",
    ):
        op.drop_table(table)
