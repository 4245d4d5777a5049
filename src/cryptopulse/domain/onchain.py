"""On-chain records and per-block metrics of EVM chains. Pure: no sockets, no database.

A source normalizes JSON-RPC blocks and ERC-20 `Transfer` logs into `Block` records; this
module turns one block into its metrics (`block_metrics`, `token_metrics`) and defines the
mergeable address sketch used by the hour/day rollups (`domain/_onchain_rollup.py`).

Definitions (docs/onchain.md has them with their sources):

- active addresses: distinct `from` and `to` of the block's transactions (the zero address
  and contract creations' empty `to` are not addresses anyone controls).
- utilisation: gas used / gas limit.
- priority fee per gas of a transaction (EIP-1559): `min(max_priority_fee, max_fee - base)`
  for typed transactions, `gas_price - base` for legacy ones, `gas_price` before London.
- contract deployments: transactions without `to`.
- token transfers: every `Transfer(address,address,uint256)` log of a tracked token, mints
  and burns included; the zero address is never a sender or receiver.
- exchange inflow: transfers *to* a configured exchange address; outflow: transfers *from*
  one (a transfer between two exchange addresses is both).
- whale transfer: amount in token units at or above the token's threshold.

Addresses are lower-case `0x` hex throughout; times are ms since the epoch (UTC).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import datasketches as ds  # type: ignore[import-untyped]

__all__ = [
    "DAY_MS",
    "GWEI",
    "HOUR_MS",
    "ROLLUP_INTERVALS",
    "ZERO_ADDRESS",
    "AddressSketch",
    "Block",
    "BlockMetrics",
    "TokenActivity",
    "TokenBlockMetrics",
    "TokenTransfer",
    "TrackedToken",
    "Tx",
    "WhaleTransfer",
    "active_addresses",
    "activity_growth",
    "block_metrics",
    "priority_fee_per_gas",
    "token_amount",
    "token_metrics",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ROLLUP_INTERVALS: dict[str, int] = {"1h": HOUR_MS, "1d": DAY_MS}
GWEI = 1_000_000_000
ZERO_ADDRESS = "0x" + "0" * 40
# 2^12 registers: about 1.6 % standard error, 4 KiB per serialized sketch; in practice
# exact (list and set modes) while a sketch holds up to a few hundred addresses.
SKETCH_LG_K = 12


@dataclass(frozen=True, slots=True)
class Tx:
    """One transaction of a block, as much of it as the metrics need (fees in wei)."""

    hash: str
    sender: str
    to: str | None  # None: contract creation
    value: int
    gas_price: int | None  # legacy price, or the effective price a node reports
    max_fee: int | None  # EIP-1559 typed transactions
    max_priority_fee: int | None


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """One ERC-20 `Transfer` log. `amount` is the raw integer (before decimals)."""

    token: str
    sender: str
    receiver: str
    amount: int
    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Block:
    """A block on one chain with its transactions and the tracked tokens' transfers."""

    chain: str
    number: int
    hash: str
    parent_hash: str
    time: int  # block timestamp, ms
    gas_used: int
    gas_limit: int
    base_fee: int | None  # wei per gas; None before London
    txs: tuple[Tx, ...] = ()
    transfers: tuple[TokenTransfer, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackedToken:
    """An ERC-20 contract whose transfers are followed on one chain."""

    address: str
    symbol: str
    decimals: int
    whale_threshold: float | None = None  # token units; None: no whale events


@dataclass(frozen=True, slots=True)
class BlockMetrics:
    chain: str
    number: int
    hash: str
    parent_hash: str
    time: int
    tx_count: int
    active_addresses: int
    gas_used: int
    gas_limit: int
    utilisation: float
    base_fee_gwei: float | None
    priority_fee_gwei: float | None  # mean over the block's transactions
    priority_fee_median_gwei: float | None
    deployments: int


@dataclass(frozen=True, slots=True)
class TokenBlockMetrics:
    """One tracked token in one block (only blocks where it moved)."""

    chain: str
    token: str
    symbol: str
    number: int
    time: int
    transfers: int
    volume: float  # token units
    senders: int
    receivers: int
    inflow: float  # to exchange addresses, token units
    outflow: float  # from exchange addresses
    whales: int


@dataclass(frozen=True, slots=True)
class WhaleTransfer:
    """A transfer at or above its token's threshold (published on `onchain:<chain>`)."""

    chain: str
    token: str
    symbol: str
    block_number: int
    log_index: int
    tx_hash: str
    time: int
    sender: str
    receiver: str
    amount: float
    exchange_in: str | None  # label of the receiving exchange
    exchange_out: str | None  # label of the sending exchange


def priority_fee_per_gas(tx: Tx, base_fee: int | None) -> int:
    """The tip per gas the block producer got from `tx` (wei), never below zero."""
    if base_fee is None:
        return tx.gas_price or 0
    if tx.max_fee is not None and tx.max_priority_fee is not None:
        return max(0, min(tx.max_priority_fee, tx.max_fee - base_fee))
    return max(0, (tx.gas_price or 0) - base_fee)


def token_amount(raw: int, decimals: int) -> float:
    """A raw ERC-20 integer in token units (float64: this is analytics, not accounting)."""
    return float(raw / 10**decimals)


def _actors(addresses: Iterable[str | None]) -> set[str]:
    return {a for a in addresses if a is not None and a != ZERO_ADDRESS}


def active_addresses(block: Block) -> set[str]:
    """Distinct senders and receivers of the block's transactions."""
    return _actors(a for tx in block.txs for a in (tx.sender, tx.to))


def block_metrics(block: Block) -> BlockMetrics:
    tips = [priority_fee_per_gas(tx, block.base_fee) / GWEI for tx in block.txs]
    return BlockMetrics(
        chain=block.chain,
        number=block.number,
        hash=block.hash,
        parent_hash=block.parent_hash,
        time=block.time,
        tx_count=len(block.txs),
        active_addresses=len(active_addresses(block)),
        gas_used=block.gas_used,
        gas_limit=block.gas_limit,
        utilisation=block.gas_used / block.gas_limit if block.gas_limit else 0.0,
        base_fee_gwei=block.base_fee / GWEI if block.base_fee is not None else None,
        priority_fee_gwei=statistics.fmean(tips) if tips else None,
        priority_fee_median_gwei=statistics.median(tips) if tips else None,
        deployments=sum(1 for tx in block.txs if tx.to is None),
    )


@dataclass(frozen=True, slots=True)
class TokenActivity:
    """A token's metrics in one block with the address sets behind its unique counts."""

    metrics: TokenBlockMetrics
    senders: frozenset[str]
    receivers: frozenset[str]


def token_metrics(
    block: Block, tokens: Mapping[str, TrackedToken], exchanges: Mapping[str, str]
) -> tuple[list[TokenActivity], list[WhaleTransfer]]:
    """Per tracked token with transfers in `block`: metrics, and the block's whale transfers.

    `tokens` and `exchanges` (address -> label) are keyed by lower-case address.
    """
    by_token: dict[str, list[TokenTransfer]] = {}
    for transfer in block.transfers:
        if transfer.token in tokens:
            by_token.setdefault(transfer.token, []).append(transfer)
    activity: list[TokenActivity] = []
    whales: list[WhaleTransfer] = []
    for address, transfers in sorted(by_token.items()):
        token = tokens[address]
        found = [_whale(block, token, t, exchanges) for t in transfers]
        token_whales = [w for w in found if w is not None]
        whales.extend(token_whales)
        activity.append(_token_activity(block, token, transfers, exchanges, len(token_whales)))
    return activity, whales


def _token_activity(
    block: Block,
    token: TrackedToken,
    transfers: list[TokenTransfer],
    exchanges: Mapping[str, str],
    whales: int,
) -> TokenActivity:
    amounts = [token_amount(t.amount, token.decimals) for t in transfers]
    senders = frozenset(_actors(t.sender for t in transfers))
    receivers = frozenset(_actors(t.receiver for t in transfers))
    inflow = sum(a for t, a in zip(transfers, amounts, strict=True) if t.receiver in exchanges)
    outflow = sum(a for t, a in zip(transfers, amounts, strict=True) if t.sender in exchanges)
    metrics = TokenBlockMetrics(
        chain=block.chain,
        token=token.address,
        symbol=token.symbol,
        number=block.number,
        time=block.time,
        transfers=len(transfers),
        volume=sum(amounts),
        senders=len(senders),
        receivers=len(receivers),
        inflow=inflow,
        outflow=outflow,
        whales=whales,
    )
    return TokenActivity(metrics, senders, receivers)


def _whale(
    block: Block, token: TrackedToken, transfer: TokenTransfer, exchanges: Mapping[str, str]
) -> WhaleTransfer | None:
    amount = token_amount(transfer.amount, token.decimals)
    if token.whale_threshold is None or amount < token.whale_threshold:
        return None
    return WhaleTransfer(
        chain=block.chain,
        token=token.address,
        symbol=token.symbol,
        block_number=block.number,
        log_index=transfer.log_index,
        tx_hash=transfer.tx_hash,
        time=block.time,
        sender=transfer.sender,
        receiver=transfer.receiver,
        amount=amount,
        exchange_in=exchanges.get(transfer.receiver),
        exchange_out=exchanges.get(transfer.sender),
    )


class AddressSketch:
    """A mergeable distinct count of addresses (HyperLogLog, Apache DataSketches).

    Union is idempotent and order-free, so hour sketches merge into day sketches and a
    sketch stored before a restart merges with the one built after it.
    """

    __slots__ = ("_union",)

    def __init__(self, lg_k: int = SKETCH_LG_K) -> None:
        self._union = ds.hll_union(lg_k)

    def add_all(self, addresses: Iterable[str]) -> None:
        sketch = ds.hll_sketch(self._union.lg_config_k, ds.tgt_hll_type.HLL_8)
        for address in addresses:
            sketch.update(address)
        self._union.update(sketch)

    def merge(self, other: AddressSketch) -> None:
        self._union.update(other._union.get_result(ds.tgt_hll_type.HLL_8))

    def copy(self) -> AddressSketch:
        twin = AddressSketch(self._union.lg_config_k)
        twin.merge(self)
        return twin

    def estimate(self) -> int:
        """Distinct addresses seen (exact while the sketch is small, then ~1.6 %)."""
        return round(float(self._union.get_estimate()))

    def to_bytes(self) -> bytes:
        return bytes(self._union.get_result(ds.tgt_hll_type.HLL_8).serialize_compact())

    @classmethod
    def from_bytes(cls, raw: bytes, lg_k: int = SKETCH_LG_K) -> AddressSketch:
        sketch = cls(lg_k)
        sketch._union.update(ds.hll_sketch.deserialize(raw))
        return sketch


def activity_growth(daily: Sequence[float | None], window_days: int = 7) -> float | None:
    """On-chain activity growth of one token: `ln(mean(recent) / mean(previous))`.

    `daily` holds one activity figure per UTC day, oldest first (distinct senders +
    receivers of the token's day rollups, summed over chains; None for a day without
    data); `recent` is its last `window_days` entries, `previous` the `window_days` before.
    None when either window has data on fewer than half its days or a zero mean. This is
    the investor grade's on-chain factor (docs/onchain.md).
    """
    if len(daily) < 2 * window_days:
        return None
    recent = [d for d in daily[-window_days:] if d is not None]
    previous = [d for d in daily[-2 * window_days : -window_days] if d is not None]
    if min(len(recent), len(previous)) * 2 < window_days:
        return None
    before, now = statistics.fmean(previous), statistics.fmean(recent)
    if before <= 0 or now <= 0:
        return None
    return math.log(now / before)
