"""On-chain history: block metrics, hour/day rollups, token transfers and supplies.

The tables join the shared `metadata`; migration 0005 creates them on SQLite and
PostgreSQL. Writes are idempotent upserts keyed by (chain, block) or (chain, interval,
open_time), so replaying blocks after a restart rewrites the same rows. A reorg deletes
the orphaned blocks' rows (`rollback`) before the new branch is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cryptopulse.domain._onchain_rollup import ChainRollup, TokenRollup
from cryptopulse.domain.onchain import BlockMetrics, TokenBlockMetrics, TokenTransfer
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import metadata

__all__ = ["OnchainBatch", "OnchainStore", "SupplyRow", "TransferRow"]

_ROWS_PER_STATEMENT = 400


def _addr(name: str, primary_key: bool = False) -> Column[Any]:
    return Column(name, String(42), primary_key=primary_key, nullable=False)


onchain_blocks = Table(
    "onchain_blocks",
    metadata,
    Column("chain", String(32), primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(66), nullable=False),
    Column("parent_hash", String(66), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("tx_count", Integer, nullable=False),
    Column("active_addresses", Integer, nullable=False),
    Column("gas_used", BigInteger, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    Column("utilisation", Float, nullable=False),
    Column("base_fee_gwei", Float, nullable=True),
    Column("priority_fee_gwei", Float, nullable=True),
    Column("priority_fee_median_gwei", Float, nullable=True),
    Column("deployments", Integer, nullable=False),
    Index("ix_onchain_blocks_chain_time", "chain", "time"),
)

onchain_rollups = Table(
    "onchain_rollups",
    metadata,
    Column("chain", String(32), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("blocks", Integer, nullable=False),
    Column("tx_count", BigInteger, nullable=False),
    Column("active_addresses", BigInteger, nullable=False),
    Column("gas_used", BigInteger, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    Column("utilisation", Float, nullable=False),
    Column("base_fee_gwei", Float, nullable=True),
    Column("priority_fee_gwei", Float, nullable=True),
    Column("deployments", Integer, nullable=False),
    Column("sketch", LargeBinary, nullable=False),
)

onchain_token_blocks = Table(
    "onchain_token_blocks",
    metadata,
    Column("chain", String(32), primary_key=True),
    _addr("token", primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("symbol", String(20), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("transfers", Integer, nullable=False),
    Column("volume", Float, nullable=False),
    Column("senders", Integer, nullable=False),
    Column("receivers", Integer, nullable=False),
    Column("inflow", Float, nullable=False),
    Column("outflow", Float, nullable=False),
    Column("whales", Integer, nullable=False),
)

onchain_token_rollups = Table(
    "onchain_token_rollups",
    metadata,
    Column("chain", String(32), primary_key=True),
    _addr("token", primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("symbol", String(20), nullable=False),
    Column("transfers", BigInteger, nullable=False),
    Column("volume", Float, nullable=False),
    Column("senders", BigInteger, nullable=False),
    Column("receivers", BigInteger, nullable=False),
    Column("inflow", Float, nullable=False),
    Column("outflow", Float, nullable=False),
    Column("whales", Integer, nullable=False),
    Column("senders_sketch", LargeBinary, nullable=False),
    Column("receivers_sketch", LargeBinary, nullable=False),
)

onchain_transfers = Table(
    "onchain_transfers",
    metadata,
    Column("chain", String(32), primary_key=True),
    _addr("token", primary_key=True),
    Column("block_number", BigInteger, primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("tx_hash", String(66), nullable=False),
    Column("time", BigInteger, nullable=False),
    _addr("sender"),
    _addr("receiver"),
    Column("amount", Float, nullable=False),
    Column("amount_raw", String(80), nullable=False),  # exact uint256, decimal
    Index("ix_onchain_transfers_time", "chain", "time"),
)

onchain_supply = Table(
    "onchain_supply",
    metadata,
    Column("chain", String(32), primary_key=True),
    _addr("token", primary_key=True),
    Column("symbol", String(20), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("total_supply", Float, nullable=False),  # token units
    Column("total_supply_raw", String(80), nullable=False),
)


@dataclass(frozen=True, slots=True)
class TransferRow:
    chain: str
    token: str
    block_number: int
    log_index: int
    tx_hash: str
    time: int
    sender: str
    receiver: str
    amount: float
    amount_raw: str


@dataclass(frozen=True, slots=True)
class SupplyRow:
    chain: str
    token: str
    symbol: str
    block_number: int
    total_supply: float
    total_supply_raw: str


@dataclass(slots=True)
class OnchainBatch:
    """Everything one flush writes, in one transaction."""

    blocks: list[BlockMetrics] = field(default_factory=list)
    token_blocks: list[TokenBlockMetrics] = field(default_factory=list)
    rollups: dict[tuple[str, str, int], ChainRollup] = field(default_factory=dict)
    token_rollups: dict[tuple[str, str, str, int], TokenRollup] = field(default_factory=dict)
    transfers: list[TransferRow] = field(default_factory=list)
    supplies: dict[tuple[str, str], SupplyRow] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(
            (
                self.blocks,
                self.token_blocks,
                self.rollups,
                self.token_rollups,
                self.transfers,
                self.supplies,
            )
        )

    def add_rollups(self, rollups: Sequence[ChainRollup], tokens: Sequence[TokenRollup]) -> None:
        for r in rollups:
            self.rollups[(r.chain, r.interval, r.open_time)] = r
        for t in tokens:
            self.token_rollups[(t.chain, t.token, t.interval, t.open_time)] = t


def transfer_row(chain: str, transfer: TokenTransfer, time: int, decimals: int) -> TransferRow:
    return TransferRow(
        chain,
        transfer.token,
        transfer.block_number,
        transfer.log_index,
        transfer.tx_hash,
        time,
        transfer.sender,
        transfer.receiver,
        transfer.amount / 10**decimals,
        str(transfer.amount),
    )


def _values(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in table.columns}


class OnchainStore:
    """Queries over the on-chain tables, sharing the engine of the market-data store."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    async def _upsert(self, conn: AsyncConnection, table: Table, rows: Sequence[Any]) -> None:
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        stmt = self.store._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={
                c.name: getattr(stmt.excluded, c.name) for c in table.columns if not c.primary_key
            },
        )
        values = [_values(table, row) for row in rows]
        for i in range(0, len(values), _ROWS_PER_STATEMENT):
            await conn.execute(stmt, values[i : i + _ROWS_PER_STATEMENT])

    async def write(self, batch: OnchainBatch) -> None:
        """Upsert a batch; rollups left without blocks (or transfers) are deleted."""
        rollups = [r for r in batch.rollups.values() if r.blocks]
        empty = [r for r in batch.rollups.values() if not r.blocks]
        tokens = [t for t in batch.token_rollups.values() if t.transfers]
        empty_tokens = [t for t in batch.token_rollups.values() if not t.transfers]
        async with self.store._write_lock, self.store.engine.begin() as conn:
            await self._upsert(conn, onchain_blocks, batch.blocks)
            await self._upsert(conn, onchain_token_blocks, batch.token_blocks)
            await self._upsert(conn, onchain_rollups, rollups)
            await self._upsert(conn, onchain_token_rollups, tokens)
            await self._upsert(conn, onchain_transfers, batch.transfers)
            await self._upsert(conn, onchain_supply, list(batch.supplies.values()))
            r, t = onchain_rollups.c, onchain_token_rollups.c
            for e in empty:
                await conn.execute(
                    onchain_rollups.delete().where(
                        r.chain == e.chain, r.interval == e.interval, r.open_time == e.open_time
                    )
                )
            for et in empty_tokens:
                await conn.execute(
                    onchain_token_rollups.delete().where(
                        t.chain == et.chain,
                        t.token == et.token,
                        t.interval == et.interval,
                        t.open_time == et.open_time,
                    )
                )

    async def rollback(self, chain: str, ancestor: int) -> None:
        """Delete the rows of every block above `ancestor` (orphaned by a reorg)."""
        async with self.store._write_lock, self.store.engine.begin() as conn:
            b, tb, tr = onchain_blocks.c, onchain_token_blocks.c, onchain_transfers.c
            await conn.execute(onchain_blocks.delete().where(b.chain == chain, b.number > ancestor))
            await conn.execute(
                onchain_token_blocks.delete().where(tb.chain == chain, tb.number > ancestor)
            )
            await conn.execute(
                onchain_transfers.delete().where(tr.chain == chain, tr.block_number > ancestor)
            )

    async def prune_transfers(self, before: int) -> int:
        async with self.store._write_lock, self.store.engine.begin() as conn:
            result = await conn.execute(
                onchain_transfers.delete().where(onchain_transfers.c.time < before)
            )
            return int(result.rowcount)

    async def last_blocks(self, chain: str, count: int) -> list[tuple[int, str, int]]:
        """(number, hash, time) of the newest `count` stored blocks, oldest first."""
        b = onchain_blocks.c
        query = (
            select(b.number, b.hash, b.time)
            .where(b.chain == chain)
            .order_by(b.number.desc())
            .limit(count)
        )
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(n), str(h), int(t)) for n, h, t in reversed(rows)]

    async def open_rollups(self, chain: str, since: int) -> tuple[list[Any], list[Any]]:
        """Chain and token rollup rows with open_time >= since (to resume their sketches)."""
        r, t = onchain_rollups.c, onchain_token_rollups.c
        async with self.store.engine.connect() as conn:
            chain_rows = (
                await conn.execute(
                    select(onchain_rollups).where(r.chain == chain, r.open_time >= since)
                )
            ).all()
            token_rows = (
                await conn.execute(
                    select(onchain_token_rollups).where(t.chain == chain, t.open_time >= since)
                )
            ).all()
        return list(chain_rows), list(token_rows)

    async def get_blocks(
        self, chain: str, *, start: int | None, end: int | None, limit: int, descending: bool
    ) -> list[BlockMetrics]:
        """Block metrics with `start <= time <= end`."""
        rows = await self._range(
            onchain_blocks, [onchain_blocks.c.chain == chain], "time", start, end, limit, descending
        )
        return [BlockMetrics(*row) for row in rows]

    async def get_rollups(
        self,
        chain: str,
        interval: str,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[Any]:
        c = onchain_rollups.c
        where = [c.chain == chain, c.interval == interval]
        return await self._range(onchain_rollups, where, "open_time", start, end, limit, descending)

    async def get_token_blocks(
        self,
        chain: str,
        token: str,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[TokenBlockMetrics]:
        c = onchain_token_blocks.c
        where = [c.chain == chain, c.token == token]
        rows = await self._range(onchain_token_blocks, where, "time", start, end, limit, descending)
        return [
            TokenBlockMetrics(
                r.chain,
                r.token,
                r.symbol,
                r.number,
                r.time,
                r.transfers,
                r.volume,
                r.senders,
                r.receivers,
                r.inflow,
                r.outflow,
                r.whales,
            )
            for r in rows
        ]

    async def get_token_rollups(
        self,
        chain: str,
        token: str,
        interval: str,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[Any]:
        c = onchain_token_rollups.c
        where = [c.chain == chain, c.token == token, c.interval == interval]
        return await self._range(
            onchain_token_rollups, where, "open_time", start, end, limit, descending
        )

    async def _range(
        self,
        table: Table,
        where: list[Any],
        time_column: str,
        start: int | None,
        end: int | None,
        limit: int,
        descending: bool,
    ) -> list[Any]:
        time = table.c[time_column]
        query = select(table).where(*where)
        if start is not None:
            query = query.where(time >= start)
        if end is not None:
            query = query.where(time <= end)
        query = query.order_by(time.desc() if descending else time.asc()).limit(limit)
        async with self.store.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def get_transfers(
        self,
        chain: str,
        token: str,
        *,
        min_value: float | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[TransferRow]:
        """Newest first (block, log index), optionally strictly before `before`."""
        c = onchain_transfers.c
        query = select(onchain_transfers).where(c.chain == chain, c.token == token)
        if min_value is not None:
            query = query.where(c.amount >= min_value)
        if before is not None:
            number, index = before
            query = query.where(
                or_(c.block_number < number, and_(c.block_number == number, c.log_index < index))
            )
        query = query.order_by(c.block_number.desc(), c.log_index.desc()).limit(limit)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [TransferRow(*row) for row in rows]

    async def get_supplies(self, chain: str) -> list[SupplyRow]:
        query = select(onchain_supply).where(onchain_supply.c.chain == chain)
        async with self.store.engine.connect() as conn:
            return [SupplyRow(*row) for row in (await conn.execute(query)).all()]
