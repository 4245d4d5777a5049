"""The EVM source against ganache on loopback: confirmation depth, rate limit and retries
through a flaky HTTP proxy, newHeads over WebSocket, and the JSON-RPC parsers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chain import LocalChain, local_chain
from cryptopulse.domain.onchain import Block
from cryptopulse.settings import ChainConfig
from cryptopulse.sources.evm import TRANSFER_TOPIC, EvmSource, parse_block, parse_transfer

T0 = 1_800_000_000


@dataclass
class RecordingSink:
    blocks: list[Block] = field(default_factory=list)
    rollbacks: list[tuple[int, str]] = field(default_factory=list)
    supplies: list[tuple[str, int, int]] = field(default_factory=list)

    async def on_block(self, block: Block) -> None:
        self.blocks.append(block)

    async def on_rollback(self, chain: str, ancestor: int, ancestor_hash: str) -> None:
        self.rollbacks.append((ancestor, ancestor_hash))

    async def on_supply(self, chain: str, token: str, block_number: int, supply: int) -> None:
        self.supplies.append((token, block_number, supply))


def config(url: str, **overrides: Any) -> ChainConfig:
    fields: dict[str, Any] = {
        "name": "devnet",
        "chain_id": 1337,
        "rpc_url": url,
        "confirmations": 0,
        "start_block": 1,
        "poll_interval_s": 0.05,
        "rate_limit_rps": 0,
    }
    fields.update(overrides)
    return ChainConfig(**fields)


@contextlib.asynccontextmanager
async def following(source: EvmSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


@dataclass
class FlakyProxy:
    """A JSON-RPC proxy on loopback that answers 429 to every third request."""

    upstream: str
    stamps: list[float] = field(default_factory=list)
    refused: int = 0

    def app(self, client: httpx.AsyncClient) -> Starlette:
        async def handle(request: Request) -> Response:
            self.stamps.append(time.monotonic())
            if len(self.stamps) % 3 == 0:
                self.refused += 1
                return Response(b"slow down", 429)
            upstream = await client.post(
                self.upstream,
                content=await request.body(),
                headers={"content-type": "application/json"},
            )
            return Response(upstream.content, upstream.status_code, media_type="application/json")

        return Starlette(routes=[Route("/", handle, methods=["POST"])])


@contextlib.asynccontextmanager
async def flaky_proxy(upstream: str) -> AsyncIterator[tuple[FlakyProxy, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = FlakyProxy(upstream)
    async with httpx.AsyncClient(timeout=10) as client:
        server = uvicorn.Server(
            uvicorn.Config(proxy.app(client), host="127.0.0.1", port=port, log_level="error")
        )
        task = asyncio.create_task(server.serve())
        await until(lambda: server.started, 10)
        try:
            yield proxy, f"http://127.0.0.1:{port}/"
        finally:
            server.should_exit = True
            await task


async def mine_blocks(chain: LocalChain, count: int) -> list[dict[str, Any]]:
    blocks = []
    for i in range(count):
        await chain.send(chain.accounts[1], chain.accounts[2], value=i + 1)
        blocks.append(await chain.mine(T0 + 12 * (i + 1)))
    return blocks


async def test_confirmation_depth_rate_limit_and_retries_through_a_flaky_endpoint() -> None:
    async with local_chain(T0) as chain, flaky_proxy(chain.url) as (proxy, url):
        blocks = await mine_blocks(chain, 8)
        source = EvmSource(
            config(url, confirmations=2, rate_limit_rps=8, batch_blocks=2, max_retries=8)
        )
        sink = RecordingSink()
        async with following(source, sink):
            await until(lambda: len(sink.blocks) >= 6)
            await asyncio.sleep(1.0)  # polling on: it must not go past head - confirmations
        assert [b.number for b in sink.blocks] == [1, 2, 3, 4, 5, 6]
        assert [b.hash for b in sink.blocks] == [b["hash"] for b in blocks[:6]]
        assert proxy.refused > 0 and source.rpc.retries >= proxy.refused
        # The bucket holds 8 calls; beyond that, at most 8 calls (so requests) a second.
        calls = proxy.stamps
        span = calls[-1] - calls[0]
        assert len(calls) > 10 and (len(calls) - 8) / span <= 8 * 1.15


async def test_new_heads_over_websocket_wake_the_follower() -> None:
    async with local_chain(T0) as chain:
        await mine_blocks(chain, 1)
        # A 30 s poll interval: only a pushed head can make it see block 2 quickly.
        source = EvmSource(config(chain.url, ws_url=chain.ws_url, poll_interval_s=30))
        sink = RecordingSink()
        async with following(source, sink):
            await until(lambda: len(sink.blocks) == 1 and source.status.websocket)
            await mine_blocks(chain, 1)
            await until(lambda: len(sink.blocks) == 2, seconds=5)
        assert source.status.head == 2


def test_parsers_take_node_json_to_records() -> None:
    raw = {
        "number": "0x10",
        "hash": "0xAB",
        "parentHash": "0xCD",
        "timestamp": "0x6b49d200",
        "gasUsed": "0x5208",
        "gasLimit": "0x1c9c380",
        "baseFeePerGas": "0x3b9aca00",
        "transactions": [
            {
                "hash": "0x01",
                "from": "0xAA",
                "to": None,
                "value": "0x0",
                "gasPrice": "0x1",
                "maxFeePerGas": "0x2",
                "maxPriorityFeePerGas": "0x1",
            },
        ],
    }
    log = {
        "address": "0xTOKEN",
        "topics": [TRANSFER_TOPIC, "0x" + "0" * 24 + "1" * 40, "0x" + "0" * 24 + "2" * 40],
        "data": "0x0f4240",
        "blockNumber": "0x10",
        "blockHash": "0xab",
        "logIndex": "0x3",
        "transactionHash": "0x01",
    }
    block = parse_block("devnet", raw, [log])
    assert (block.number, block.time, block.base_fee, block.hash) == (16, T0 * 1000, 10**9, "0xab")
    assert block.txs[0].to is None and block.txs[0].sender == "0xaa"
    [transfer] = block.transfers
    assert (transfer.sender, transfer.receiver) == ("0x" + "1" * 40, "0x" + "2" * 40)
    assert (transfer.amount, transfer.log_index, transfer.token) == (1_000_000, 3, "0xtoken")
    nft = {**log, "topics": [*log["topics"], "0x" + "0" * 63 + "7"]}
    assert parse_transfer(nft) is None  # ERC-721 Transfer: four topics
    assert parse_transfer({**log, "removed": True}) is None
