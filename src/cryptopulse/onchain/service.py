"""The on-chain service: follows the configured EVM chains, computes their metrics, writes
the store in batches and publishes `onchain:<chain>` events.

Per chain: an `EvmSource` (sources/evm.py) delivers confirmed blocks, rollbacks and token
supplies to this service (its sink); an `OnchainAccumulator` (pure) turns each block into
block, token and hour/day rollup metrics and whale transfers. Events on `onchain:<chain>`:

- `{"event": "block", "chain", "block": {...}, "tokens": [{"token", "symbol", ...}]}`
- `{"event": "whale", "chain", "token", "symbol", "amount", "from", "to", ...}`
- `{"event": "reorg", "chain", "ancestor", "removed": [...], "exact": bool}`
- `{"event": "supply", "chain", "token", "symbol", "block_number", "total_supply"}`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from cryptopulse.bus.base import Bus
from cryptopulse.domain._onchain_rollup import CHAIN, OnchainAccumulator
from cryptopulse.domain.onchain import (
    DAY_MS,
    Block,
    TrackedToken,
    WhaleTransfer,
    token_amount,
)
from cryptopulse.onchain import _payloads
from cryptopulse.settings import ChainConfig, Settings, TokenConfig
from cryptopulse.sources.base import now_ms
from cryptopulse.sources.evm import ChainMismatch, EvmSource, EvmStatus
from cryptopulse.store.onchain import OnchainBatch, OnchainStore, SupplyRow, transfer_row
from cryptopulse.store.sql import SQLStore

log = logging.getLogger(__name__)

__all__ = ["ChainFeed", "OnchainService"]

WhaleHook = Callable[[WhaleTransfer], Awaitable[None]]


@dataclass(slots=True)
class ChainFeed:
    """One followed chain: its config, source, accumulator and latest supplies."""

    config: ChainConfig
    accumulator: OnchainAccumulator
    source: EvmSource | None = None
    supplies: dict[str, SupplyRow] = field(default_factory=dict)
    inexact_rollbacks: int = 0

    @property
    def status(self) -> EvmStatus:
        return self.source.status if self.source is not None else EvmStatus(self.config.name)


class OnchainService:
    """Sink of every EVM source; owner of the on-chain batches and events."""

    def __init__(self, settings: Settings, store: SQLStore, bus: Bus) -> None:
        self.settings = settings
        self.store = OnchainStore(store)
        self.bus = bus
        self.chains: dict[str, ChainFeed] = {}
        for config in settings.onchain_chains:
            tokens = {t.address: t for t in config.tokens}
            accumulator = OnchainAccumulator(
                config.name,
                {a: _tracked(t) for a, t in tokens.items()},
                config.exchanges,
                window=config.reorg_window,
            )
            self.chains[config.name] = ChainFeed(config, accumulator)
        # Awaited with every whale transfer after it is published (the alerts issue's hook).
        self.whale_hooks: list[WhaleHook] = []
        self._batch = OnchainBatch()
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, follow: bool = True) -> None:
        """Load each chain's resume point; with `follow`, start its source and the flusher."""
        for feed in self.chains.values():
            known = await self._restore(feed)
            feed.supplies = {s.token: s for s in await self.store.get_supplies(feed.config.name)}
            if follow:
                feed.source = EvmSource(feed.config, known=known)
                task = asyncio.create_task(self._run(feed.source), name=f"evm:{feed.config.name}")
                self._tasks.append(task)
        if follow and self.chains:
            self._tasks.append(asyncio.create_task(self._flush_loop(), name="onchain-flush"))

    async def _restore(self, feed: ChainFeed) -> list[tuple[int, str]]:
        name = feed.config.name
        last = await self.store.last_blocks(name, feed.config.reorg_window)
        if not last:
            return []
        number, block_hash, time = last[-1]
        chain_rows, token_rows = await self.store.open_rollups(name, time - time % DAY_MS)
        buckets = [
            (CHAIN, r.interval, r.open_time, _chain_sums(r), {"addresses": r.sketch})
            for r in chain_rows
        ]
        buckets += [
            (
                r.token,
                r.interval,
                r.open_time,
                {
                    n: float(getattr(r, n))
                    for n in ("transfers", "volume", "inflow", "outflow", "whales")
                },
                {"senders": r.senders_sketch, "receivers": r.receivers_sketch},
            )
            for r in token_rows
        ]
        feed.accumulator.restore((number, block_hash), buckets)
        return [(n, h) for n, h, _ in last]

    async def _run(self, source: EvmSource) -> None:
        try:
            await source.run(self)
        except asyncio.CancelledError:
            raise
        except ChainMismatch as exc:
            log.error("on-chain feed stopped: %s", exc)
        except Exception:  # a source bug must not take the service down
            log.exception("on-chain source %s stopped", source.name)
            source.status.connected = False

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.flush()

    # --- the sink ---------------------------------------------------------------------

    async def on_block(self, block: Block) -> None:
        feed = self.chains[block.chain]
        update = feed.accumulator.add(block)
        batch = self._batch
        batch.blocks.append(update.block)
        batch.token_blocks.extend(update.tokens)
        batch.add_rollups(update.rollups, update.token_rollups)
        tokens = feed.accumulator.tokens
        batch.transfers.extend(
            transfer_row(block.chain, t, block.time, tokens[t.token].decimals)
            for t in block.transfers
            if t.token in tokens
        )
        channel = f"onchain:{block.chain}"
        body = {
            "event": "block",
            "chain": block.chain,
            "block": _payloads.block_body(update.block),
            "tokens": [
                {"token": m.token, "symbol": m.symbol, **_payloads.token_block_body(m)}
                for m in update.tokens
            ],
        }
        await self.bus.publish(channel, orjson.dumps(body), block.time)
        for whale in update.whales:
            await self.bus.publish(channel, orjson.dumps(_payloads.whale_body(whale)), whale.time)
            for hook in self.whale_hooks:
                await hook(whale)

    async def on_rollback(self, chain: str, ancestor: int, ancestor_hash: str) -> None:
        feed = self.chains[chain]
        await self.flush()  # the orphaned rows must be written before they are deleted
        update = feed.accumulator.rollback(ancestor, ancestor_hash)
        if not update.exact:
            feed.inexact_rollbacks += 1
            log.error("%s: reorg below block %d is deeper than the reorg window", chain, ancestor)
        async with self._flush_lock:
            await self.store.rollback(chain, ancestor)
        self._batch.add_rollups(update.rollups, update.token_rollups)
        body = {
            "event": "reorg",
            "chain": chain,
            "ancestor": ancestor,
            "ancestor_hash": ancestor_hash,
            "removed": update.removed,
            "exact": update.exact,
        }
        await self.bus.publish(f"onchain:{chain}", orjson.dumps(body), now_ms())

    async def on_supply(self, chain: str, token: str, block_number: int, supply: int) -> None:
        known = self.chains[chain].accumulator.tokens.get(token)
        if known is None:
            return
        units = token_amount(supply, known.decimals)
        row = SupplyRow(chain, token, known.symbol, block_number, units, str(supply))
        self.chains[chain].supplies[token] = row
        self._batch.supplies[(chain, token)] = row
        body = {
            "event": "supply",
            "chain": chain,
            "token": token,
            "symbol": known.symbol,
            "block_number": block_number,
            "total_supply": units,
        }
        await self.bus.publish(f"onchain:{chain}", orjson.dumps(body), now_ms())

    # --- the store --------------------------------------------------------------------

    async def flush(self) -> None:
        """Write what is pending; on failure the batch stays for the next try."""
        async with self._flush_lock:
            batch = self._batch
            if not batch:
                return
            self._batch = OnchainBatch()
            try:
                await self.store.write(batch)
            except Exception:
                _merge_back(batch, self._batch)
                self._batch = batch
                raise

    async def _flush_loop(self) -> None:
        retention_ms = int(self.settings.onchain_transfer_retention_hours * 3_600_000)
        ticks = 0
        while True:
            await asyncio.sleep(self.settings.onchain_flush_interval_s)
            ticks += 1
            try:
                await self.flush()
                if ticks % 1200 == 1:
                    await self.store.prune_transfers(now_ms() - retention_ms)
            except Exception:
                log.exception("on-chain flush failed; retrying")


def _tracked(t: TokenConfig) -> TrackedToken:
    return TrackedToken(t.address, t.symbol, t.decimals, t.whale_threshold)


def _chain_sums(row: object) -> dict[str, float]:
    get = row.__getattribute__
    blocks = float(get("blocks"))
    tx_count = float(get("tx_count"))
    base, tip = get("base_fee_gwei"), get("priority_fee_gwei")
    sums = {
        "blocks": blocks,
        "tx_count": tx_count,
        "gas_used": float(get("gas_used")),
        "gas_limit": float(get("gas_limit")),
        "deployments": float(get("deployments")),
    }
    if base is not None:
        sums["base_fee_sum"] = float(base) * blocks
        sums["base_fee_blocks"] = blocks
    if tip is not None:
        sums["priority_fee_sum"] = float(tip) * tx_count
    return sums


def _merge_back(failed: OnchainBatch, newer: OnchainBatch) -> None:
    """Put a failed batch back in front of what arrived while it was being written."""
    failed.blocks.extend(newer.blocks)
    failed.token_blocks.extend(newer.token_blocks)
    failed.rollups.update(newer.rollups)
    failed.token_rollups.update(newer.token_rollups)
    failed.transfers.extend(newer.transfers)
    failed.supplies.update(newer.supplies)
