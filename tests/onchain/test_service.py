"""The on-chain service against a real node: ganache on loopback, a deployed ERC-20, real
transfers, a forced reorg; metrics checked against values computed here from the node's
own JSON, and rollups after a reorg checked against a fresh run over the final chain."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from chain import LocalChain, local_chain
from cryptopulse.bus.base import Message
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.onchain import OnchainService
from cryptopulse.settings import ChainConfig, Settings, TokenConfig
from cryptopulse.store.onchain import (
    onchain_blocks,
    onchain_rollups,
    onchain_token_rollups,
    onchain_transfers,
)
from cryptopulse.store.sql import SQLStore

T0 = 1_800_000_000  # seconds; an hour boundary
DECIMALS = 6
UNIT = 10**DECIMALS
ZERO = "0x" + "0" * 40


def chain_config(chain: LocalChain, token: str, exchange: str, **overrides: Any) -> ChainConfig:
    fields: dict[str, Any] = {
        "name": "devnet",
        "chain_id": 1337,
        "rpc_url": chain.url,
        "confirmations": 0,
        "backfill_blocks": 0,
        "start_block": 1,
        "poll_interval_s": 0.05,
        "rate_limit_rps": 0,
        "batch_blocks": 3,
        "tokens": [
            TokenConfig(symbol="TST", address=token, decimals=DECIMALS, whale_threshold=100_000)
        ],
        "exchanges": {exchange: "bigex"},
    }
    fields.update(overrides)
    return ChainConfig(**fields)


async def started(config: ChainConfig, db: Path) -> tuple[OnchainService, SQLStore, MemoryBus]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db}", onchain_chains=[config])
    store = SQLStore(settings.database_url)
    await store.migrate()
    bus = MemoryBus(1000)
    service = OnchainService(settings, store, bus)
    await service.start()
    return service, store, bus


async def wait_processed(service: OnchainService, number: int, block_hash: str) -> None:
    status = service.chains["devnet"].status
    for _ in range(300):  # 15 s at most
        head = service.chains["devnet"].accumulator.head
        if head is not None and head == (number, block_hash):
            await service.flush()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not processed up to {number}: {status}")


def tip(tx: dict[str, Any], base: int) -> float:
    return min(int(tx["maxPriorityFeePerGas"], 16), int(tx["maxFeePerGas"], 16) - base) / 1e9


async def rows(store: SQLStore, table: Any) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


class _Ignore:
    def deliver(self, message: Message) -> None:
        pass


async def history(bus: MemoryBus, channel: str) -> list[dict[str, Any]]:
    """Every event published on `channel` (the bus replay from seq 0)."""
    listener = _Ignore()
    subscription = await bus.subscribe(channel, listener, resume_after=0)
    await bus.unsubscribe(channel, listener)
    return [orjson.loads(m.data) for m in subscription.replay]


@pytest.fixture
async def devnet() -> AsyncIterator[LocalChain]:
    async with local_chain(T0) as chain:
        yield chain


async def scenario(chain: LocalChain) -> tuple[str, list[dict[str, Any]], str]:
    """Three blocks over two hours: a deployment, small transfers and an ETH payment, then
    a whale transfer into an exchange and a withdrawal out of it. Also returns a node
    snapshot taken at block 2 (to fork from)."""
    a = chain.accounts
    token, first = await chain.deploy_token(a[0], "TST", DECIMALS, 10_000_000 * UNIT, T0 + 10)
    await chain.transfer(token, a[0], a[1], 5 * UNIT)
    await chain.transfer(token, a[0], a[2], 7 * UNIT, tip_gwei=2)
    await chain.send(a[3], a[4], value=1, tip_gwei=3)
    second = await chain.mine(T0 + 22)
    at_second = str(await chain.rpc("evm_snapshot"))
    await chain.transfer(token, a[0], a[5], 500_000 * UNIT)
    await chain.transfer(token, a[5], a[6], 1_000 * UNIT)
    third = await chain.mine(T0 + 3_600 + 5)
    return token, [first, second, third], at_second


async def test_block_token_and_rollup_metrics_match_the_node(
    devnet: LocalChain, tmp_path: Path
) -> None:
    a = devnet.accounts
    token, blocks, _ = await scenario(devnet)
    config = chain_config(devnet, token, exchange=a[5])
    service, store, bus = await started(config, tmp_path / "a.db")
    try:
        last = blocks[-1]
        await wait_processed(service, int(last["number"], 16), last["hash"])
        stored = {r.number: r for r in await rows(store, onchain_blocks)}
        assert sorted(stored) == [1, 2, 3]
        for raw in blocks:
            row = stored[int(raw["number"], 16)]
            base = int(raw["baseFeePerGas"], 16)
            txs = raw["transactions"]
            tips = [tip(tx, base) for tx in txs]
            addresses = {tx["from"].lower() for tx in txs} | {
                tx["to"].lower() for tx in txs if tx.get("to")
            }
            assert row.hash == raw["hash"]
            assert row.time == int(raw["timestamp"], 16) * 1000
            assert row.tx_count == len(txs)
            assert row.active_addresses == len(addresses)
            assert row.gas_used == int(raw["gasUsed"], 16)
            assert row.utilisation == pytest.approx(
                int(raw["gasUsed"], 16) / int(raw["gasLimit"], 16)
            )
            assert row.base_fee_gwei == pytest.approx(base / 1e9)
            assert row.priority_fee_gwei == pytest.approx(statistics.fmean(tips))
            assert row.priority_fee_median_gwei == pytest.approx(statistics.median(tips))
            assert row.deployments == sum(1 for tx in txs if not tx.get("to"))
        assert stored[1].deployments == 1 and stored[2].tx_count == 3

        hours = {r.open_time: r for r in await rows(store, onchain_rollups) if r.interval == "1h"}
        assert sorted(hours) == [T0 * 1000, (T0 + 3_600) * 1000]
        first_hour = hours[T0 * 1000]
        assert first_hour.blocks == 2 and first_hour.tx_count == 4
        # a0 deploys and pays a1, a2 (via the token contract: the receiver is the contract)
        assert first_hour.active_addresses == len({a[0], token, a[3], a[4]})
        base_fees = [int(b["baseFeePerGas"], 16) / 1e9 for b in blocks[:2]]
        assert first_hour.base_fee_gwei == pytest.approx(statistics.fmean(base_fees))
        all_tips = [
            tip(tx, int(b["baseFeePerGas"], 16)) for b in blocks[:2] for tx in b["transactions"]
        ]
        assert first_hour.priority_fee_gwei == pytest.approx(statistics.fmean(all_tips))
        day = [r for r in await rows(store, onchain_rollups) if r.interval == "1d"]
        assert len(day) == 1 and day[0].blocks == 3 and day[0].tx_count == 6
        assert day[0].active_addresses == len({a[0], token, a[3], a[4], a[5]})
        assert day[0].gas_used == sum(int(b["gasUsed"], 16) for b in blocks)

        token_hours = {
            r.open_time: r for r in await rows(store, onchain_token_rollups) if r.interval == "1h"
        }
        h1, h2 = token_hours[T0 * 1000], token_hours[(T0 + 3_600) * 1000]
        assert (h1.transfers, h1.volume) == (3, 10_000_000 + 12)  # the mint and two payments
        assert (h1.senders, h1.receivers) == (1, 3)  # the zero address is nobody
        assert (h2.transfers, h2.volume, h2.whales) == (2, 501_000, 1)
        assert (h2.inflow, h2.outflow) == (500_000, 1_000)
        assert (h2.senders, h2.receivers) == (2, 2)
        token_day = [r for r in await rows(store, onchain_token_rollups) if r.interval == "1d"]
        assert token_day[0].senders == 2 and token_day[0].receivers == 5

        transfers = await rows(store, onchain_transfers)
        assert len(transfers) == 5
        into_exchange = [t for t in transfers if t.receiver == a[5]]
        assert [(t.amount, t.amount_raw) for t in into_exchange] == [(500_000, str(500_000 * UNIT))]

        supply = service.chains["devnet"].supplies[token]
        assert supply.total_supply == 10_000_000
        assert supply.total_supply_raw == str(await devnet.total_supply(token))

        events = await history(bus, "onchain:devnet")
        whales = [e for e in events if e["event"] == "whale"]
        # the mint (10M from the zero address) is a large transfer too
        assert [(w["from"], w["to"], w["amount"]) for w in whales] == [
            (ZERO, a[0], 10_000_000),
            (a[0], a[5], 500_000),
        ]
        assert [w["exchange_in"] for w in whales] == [None, "bigex"]
        assert [e["block"]["number"] for e in events if e["event"] == "block"] == [1, 2, 3]
    finally:
        await service.stop()
        await store.close()


async def rollup_state(store: SQLStore) -> tuple[list[Any], list[Any]]:
    chain_rows = sorted(
        (r.interval, r.open_time, tuple(r)[3:12]) for r in await rows(store, onchain_rollups)
    )
    token_rows = sorted(
        (r.interval, r.open_time, tuple(r)[5:12]) for r in await rows(store, onchain_token_rollups)
    )
    return chain_rows, token_rows


async def test_a_reorg_rolls_back_and_recomputes_like_a_fresh_run(
    devnet: LocalChain, tmp_path: Path
) -> None:
    a = devnet.accounts
    token, blocks, at_second = await scenario(devnet)
    # Fork point: block 2. Block 3 (the whale) is delivered first, then orphaned.
    config = chain_config(devnet, token, exchange=a[5])
    service, store, bus = await started(config, tmp_path / "reorg.db")
    try:
        await wait_processed(service, 3, blocks[2]["hash"])
        assert len([t for t in await rows(store, onchain_transfers) if t.block_number == 3]) == 2
        # Rewind the node to block 2 and mine a different, longer branch.
        assert await devnet.rpc("evm_revert", at_second)
        await devnet.transfer(token, a[0], a[7], 3 * UNIT)
        await devnet.mine(T0 + 3_600 + 9)
        await devnet.send(a[8], a[9], value=5)
        new_head = await devnet.mine(T0 + 2 * 3_600 + 1)
        await wait_processed(service, 4, new_head["hash"])

        stored = {r.number: r.hash for r in await rows(store, onchain_blocks)}
        canonical = {
            n: (await devnet.rpc("eth_getBlockByNumber", hex(n), False))["hash"]
            for n in range(1, 5)
        }
        assert stored == canonical
        transfers = await rows(store, onchain_transfers)
        assert not [t for t in transfers if t.receiver in (a[5], a[6])]  # the orphaned ones
        assert service.chains["devnet"].status.reorgs == 1
        events = await history(bus, "onchain:devnet")
        reorgs = [e for e in events if e["event"] == "reorg"]
        assert [(e["ancestor"], e["removed"], e["exact"]) for e in reorgs] == [(2, [3], True)]
        after_reorg = await rollup_state(store)
    finally:
        await service.stop()
        await store.close()

    # The oracle: a service that only ever saw the final chain.
    fresh, fresh_store, _ = await started(config, tmp_path / "fresh.db")
    try:
        await wait_processed(fresh, 4, new_head["hash"])
        assert await rollup_state(fresh_store) == after_reorg
        hour_two = [r for r in after_reorg[1] if r[0] == "1h" and r[1] == (T0 + 3_600) * 1000]
        assert hour_two and hour_two[0][2][:2] == (1, 3.0)  # one transfer of 3 TST, no whale
    finally:
        await fresh.stop()
        await fresh_store.close()


async def test_a_restart_resumes_after_the_stored_head_and_merges_the_sketches(
    devnet: LocalChain, tmp_path: Path
) -> None:
    a = devnet.accounts
    token, blocks, _ = await scenario(devnet)
    config = chain_config(devnet, token, exchange=a[5])
    service, store, _ = await started(config, tmp_path / "restart.db")
    await wait_processed(service, 3, blocks[2]["hash"])
    await service.stop()
    await store.close()
    await devnet.send(a[8], a[0], value=1)  # a[0] again, and a new address a[8]
    fourth = await devnet.mine(T0 + 3_600 + 30)

    again, store, bus = await started(config, tmp_path / "restart.db")
    try:
        await wait_processed(again, 4, fourth["hash"])
        events = await history(bus, "onchain:devnet")
        assert [e["block"]["number"] for e in events if e["event"] == "block"] == [4]
        day = [r for r in await rows(store, onchain_rollups) if r.interval == "1d"]
        assert day[0].blocks == 4 and day[0].tx_count == 7
        assert day[0].active_addresses == len({a[0], token, a[3], a[4], a[5], a[8]})
    finally:
        await again.stop()
        await store.close()
