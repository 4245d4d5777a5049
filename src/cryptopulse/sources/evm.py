"""EVM chains over JSON-RPC: follow the head with a confirmation depth, survive reorgs.

One `EvmSource` per configured chain (`CRYPTOPULSE_ONCHAIN_CHAINS`). It polls
`eth_blockNumber` over HTTP (and wakes up early on `eth_subscribe("newHeads")` when the
chain has a WebSocket URL), fetches every block at `latest - confirmations` with its
transactions (one batched HTTP request per `batch_blocks` blocks) and the tracked tokens'
`Transfer` logs (`eth_getLogs` over the same range), and hands `Block` records to the sink.

Reorgs: the source remembers the hashes of the last `reorg_window` blocks it delivered.
When a new block's `parentHash` is not the hash delivered at that height, it walks back
to the newest height where the node's block still has the delivered hash (the common
ancestor), tells the sink to roll back to it, and delivers the new branch from there.
On start it backfills `backfill_blocks` below the confirmed head (or resumes after the
newest stored block) and reads `totalSupply()` of each token every `supply_refresh_blocks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptopulse.domain.onchain import Block, TokenTransfer, TrackedToken, Tx
from cryptopulse.settings import ChainConfig
from cryptopulse.sources._evm_rpc import EvmRpc, RpcError, RpcUnavailable
from cryptopulse.sources.base import Backoff, now_ms

log = logging.getLogger(__name__)

__all__ = [
    "TRANSFER_TOPIC",
    "ChainMismatch",
    "EvmSource",
    "EvmStatus",
    "OnchainSink",
    "parse_block",
    "parse_transfer",
]

# keccak("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TOTAL_SUPPLY_CALL = "0x18160ddd"  # totalSupply()


class OnchainSink(Protocol):
    """Where an EVM source delivers (the on-chain service)."""

    async def on_block(self, block: Block) -> None: ...

    async def on_rollback(self, chain: str, ancestor: int, ancestor_hash: str) -> None:
        """Every block above `ancestor` was orphaned; new blocks follow from ancestor + 1."""

    async def on_supply(self, chain: str, token: str, block_number: int, supply: int) -> None:
        """`totalSupply()` of `token` (raw integer) as of `block_number`."""


class ChainMismatch(Exception):
    """The endpoint serves another chain than the configured `chain_id` (no retry)."""


@dataclass(slots=True)
class EvmStatus:
    """What `/v1/onchain/chains` reports about one chain's feed."""

    chain: str
    connected: bool = False
    websocket: bool = False  # newHeads subscription live
    head: int | None = None  # the node's latest block
    processed: int | None = None  # newest block delivered
    last_block_time: int | None = None
    last_message: int | None = None  # when we last heard from the node, ms
    blocks: int = 0
    reorgs: int = 0
    orphaned: int = 0  # blocks rolled back
    last_error: str | None = None


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _address(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value not in ("", "0x") else None


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def parse_transfer(raw: Mapping[str, Any]) -> TokenTransfer | None:
    """An ERC-20 `Transfer` log, or None for anything else (ERC-721 has 4 topics).

    ```
    {"address": "0xa0b8...eb48", "blockNumber": "0x13a4b1c", "blockHash": "0x7c...",
     "logIndex": "0x1f", "transactionHash": "0x5e...", "removed": false, "data": "0x...0f4240",
     "topics": ["0xddf252ad...", "0x000...<from>", "0x000...<to>"]}
    ```
    """
    topics = raw.get("topics") or []
    if len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC or raw.get("removed"):
        return None
    data = str(raw.get("data") or "0x")
    return TokenTransfer(
        token=str(raw["address"]).lower(),
        sender="0x" + str(topics[1])[-40:].lower(),
        receiver="0x" + str(topics[2])[-40:].lower(),
        amount=int(data, 16) if data != "0x" else 0,
        block_number=_int(raw["blockNumber"]),
        log_index=_int(raw["logIndex"]),
        tx_hash=str(raw["transactionHash"]).lower(),
    )


def parse_block(chain: str, raw: Mapping[str, Any], logs: Sequence[Mapping[str, Any]]) -> Block:
    """A block from `eth_getBlockByNumber(n, true)` and its `Transfer` logs.

    ```
    {"number": "0x13a4b1c", "hash": "0x7c...", "parentHash": "0x1d...",
     "timestamp": "0x6747a3c7", "gasUsed": "0xe4e1c0", "gasLimit": "0x1c9c380",
     "baseFeePerGas": "0x2540be400", "transactions": [{"hash": "0x5e...", "from": "0x...",
     "to": null, "value": "0x0", "gasPrice": "0x...", "maxFeePerGas": "0x...",
     "maxPriorityFeePerGas": "0x...", "type": "0x2"}]}
    ```
    """
    txs = tuple(
        Tx(
            hash=str(tx["hash"]).lower(),
            sender=str(tx["from"]).lower(),
            to=_address(tx.get("to")),
            value=_int(tx.get("value") or 0),
            gas_price=_opt_int(tx.get("gasPrice")),
            max_fee=_opt_int(tx.get("maxFeePerGas")),
            max_priority_fee=_opt_int(tx.get("maxPriorityFeePerGas")),
        )
        for tx in raw.get("transactions") or []
        if isinstance(tx, Mapping)
    )
    transfers = tuple(t for t in (parse_transfer(x) for x in logs) if t is not None)
    return Block(
        chain=chain,
        number=_int(raw["number"]),
        hash=str(raw["hash"]).lower(),
        parent_hash=str(raw["parentHash"]).lower(),
        time=_int(raw["timestamp"]) * 1000,
        gas_used=_int(raw["gasUsed"]),
        gas_limit=_int(raw["gasLimit"]),
        base_fee=_opt_int(raw.get("baseFeePerGas")),
        txs=txs,
        transfers=tuple(sorted(transfers, key=lambda t: t.log_index)),
    )


class _Inconsistent(Exception):
    """Logs and blocks of one range came from different forks; fetch again."""


class EvmSource:
    """Follows one EVM chain and delivers confirmed blocks, rollbacks and token supplies."""

    kind = "live"

    def __init__(
        self,
        config: ChainConfig,
        *,
        known: Sequence[tuple[int, str]] = (),
        rpc: EvmRpc | None = None,
    ) -> None:
        self.config = config
        self.name = f"evm:{config.name}"
        self.tokens: dict[str, TrackedToken] = {
            t.address: TrackedToken(t.address, t.symbol, t.decimals, t.whale_threshold)
            for t in config.tokens
        }
        self.rpc = rpc or EvmRpc(
            config.rpc_url,
            rate_limit_rps=config.rate_limit_rps,
            max_retries=config.max_retries,
            timeout_s=config.timeout_s,
        )
        self.status = EvmStatus(config.name)
        # Delivered blocks still undoable: number -> hash (the reorg detector's memory).
        self._hashes: dict[int, str] = dict(known)
        self._next: int | None = max(self._hashes) + 1 if self._hashes else None
        self._head_event = asyncio.Event()
        self._since_supply: int | None = None

    async def run(self, sink: OnchainSink) -> None:
        """Follow the chain until cancelled; network trouble is retried, never raised."""
        backoff = Backoff(base=0.5, cap=30.0)
        heads = asyncio.create_task(self._watch_heads()) if self.config.ws_url else None
        try:
            while True:
                try:
                    await self._check_chain()
                    await self._follow(sink, backoff)
                except (RpcUnavailable, RpcError, _Inconsistent) as exc:
                    self.status.connected = False
                    self.status.last_error = str(exc)[:200]
                    log.warning("evm %s: %s; retrying", self.config.name, exc)
                    await asyncio.sleep(backoff.next_delay())
        finally:
            if heads is not None:
                heads.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heads
            await self.rpc.close()

    async def _check_chain(self) -> None:
        chain_id = _int(await self.rpc.call("eth_chainId"))
        if chain_id != self.config.chain_id:
            self.status.last_error = f"endpoint serves chain {chain_id}"
            raise ChainMismatch(
                f"{self.config.name}: configured chain_id {self.config.chain_id}, "
                f"the endpoint serves {chain_id}"
            )

    async def _follow(self, sink: OnchainSink, backoff: Backoff) -> None:
        while True:
            latest = _int(await self.rpc.call("eth_blockNumber"))
            self._heard(latest)
            backoff.reset()
            target = latest - self.config.confirmations
            if self._next is None:
                start = self.config.start_block
                self._next = (
                    start if start is not None else target - self.config.backfill_blocks + 1
                )
                self._next = max(0, self._next)
            while self._next <= target:
                end = min(self._next + self.config.batch_blocks - 1, target)
                for block in await self._fetch(self._next, end):
                    if not await self._deliver(block, sink):
                        break
                await self._refresh_supply(sink)
            await self._wait_for_head()

    def _heard(self, latest: int) -> None:
        self.status.connected = True
        self.status.head = latest
        self.status.last_message = now_ms()
        self.status.last_error = None

    async def _fetch(self, start: int, end: int) -> list[Block]:
        numbers = range(start, end + 1)
        raw_blocks = await self.rpc.batch(
            [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
        )
        found = [b for b in raw_blocks if b]
        logs: list[Mapping[str, Any]] = []
        if self.tokens and found:
            query = {
                "fromBlock": hex(start),
                "toBlock": hex(start + len(found) - 1),
                "address": sorted(self.tokens),
                "topics": [TRANSFER_TOPIC],
            }
            logs = list(await self.rpc.call("eth_getLogs", [query]) or [])
        hashes = {str(b["hash"]).lower() for b in found}
        by_block: dict[str, list[Mapping[str, Any]]] = {}
        for entry in logs:
            block_hash = str(entry.get("blockHash", "")).lower()
            if block_hash not in hashes:
                raise _Inconsistent(f"logs of block {entry.get('blockNumber')} from another fork")
            by_block.setdefault(block_hash, []).append(entry)
        return [
            parse_block(self.config.name, b, by_block.get(str(b["hash"]).lower(), []))
            for b in found
        ]

    async def _deliver(self, block: Block, sink: OnchainSink) -> bool:
        """Deliver `block` or, when it does not extend what we delivered, roll back."""
        previous = self._hashes.get(block.number - 1)
        if previous is not None and block.parent_hash != previous:
            ancestor, ancestor_hash = await self._find_ancestor(block.number - 1)
            orphaned = [n for n in self._hashes if n > ancestor]
            for number in orphaned:
                del self._hashes[number]
            self.status.reorgs += 1
            self.status.orphaned += len(orphaned)
            log.warning(
                "evm %s: reorg, %d block(s) above %d orphaned",
                self.config.name,
                len(orphaned),
                ancestor,
            )
            await sink.on_rollback(self.config.name, ancestor, ancestor_hash)
            self._next = ancestor + 1
            return False
        await sink.on_block(block)
        self._hashes[block.number] = block.hash
        self._hashes.pop(block.number - self.config.reorg_window, None)
        self._next = block.number + 1
        self.status.processed = block.number
        self.status.last_block_time = block.time
        self.status.blocks += 1
        if self._since_supply is not None:
            self._since_supply += 1
        return True

    async def _find_ancestor(self, number: int) -> tuple[int, str]:
        """The newest height at or below `number` where the node agrees with what we
        delivered (or the oldest one we remember, when the reorg goes deeper)."""
        while number >= 0:
            raw = await self.rpc.call("eth_getBlockByNumber", [hex(number), False])
            canonical = str(raw["hash"]).lower() if raw else ""
            mine = self._hashes.get(number)
            if mine is None or canonical == mine:
                return number, canonical
            number -= 1
        return -1, ""

    async def _refresh_supply(self, sink: OnchainSink) -> None:
        processed = self.status.processed
        every = self.config.supply_refresh_blocks
        if not self.tokens or processed is None:
            return
        if self._since_supply is not None and self._since_supply < every:
            return
        addresses = sorted(self.tokens)
        calls: list[tuple[str, Sequence[Any]]] = [
            ("eth_call", [{"to": address, "data": TOTAL_SUPPLY_CALL}, hex(processed)])
            for address in addresses
        ]
        results = await self.rpc.batch(calls)
        for address, result in zip(addresses, results, strict=True):
            if isinstance(result, str) and len(result) > 2:
                await sink.on_supply(self.config.name, address, processed, int(result, 16))
        self._since_supply = 0

    async def _wait_for_head(self) -> None:
        self._head_event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._head_event.wait(), self.config.poll_interval_s)

    async def _watch_heads(self) -> None:
        """Wake the follower on every new head pushed over WebSocket (polling still runs)."""
        from web3 import AsyncWeb3, WebSocketProvider  # noqa: PLC0415  (only with ws_url)

        backoff = Backoff(base=0.5, cap=30.0)
        url = str(self.config.ws_url)
        while True:
            try:
                async with AsyncWeb3(WebSocketProvider(url)) as w3:
                    await w3.eth.subscribe("newHeads")
                    self.status.websocket = True
                    backoff.reset()
                    async for _ in w3.socket.process_subscriptions():
                        self._head_event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any socket or protocol failure: reconnect later
                log.debug("evm %s: newHeads stream: %s", self.config.name, exc)
            self.status.websocket = False
            await asyncio.sleep(backoff.next_delay())
