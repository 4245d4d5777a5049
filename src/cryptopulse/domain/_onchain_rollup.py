"""Hour and day rollups of on-chain metrics that survive reorgs. Pure: no I/O.

Sums (transactions, gas, fees, volumes) could be undone by subtraction, but a HyperLogLog
sketch cannot forget an address. So the accumulator keeps the last `window` blocks apart:

    live bucket = settled part (blocks older than the window, merged for good)
                + the recent blocks that fall in the bucket (kept with their address sets)

A new block is added to its live buckets in O(1). When a block leaves the window it is
folded into the settled part. A rollback (reorg) drops recent blocks above the common
ancestor and rebuilds only the live buckets they touched from settled + the remaining
recent blocks, so the rollups equal those of a chain that never saw the orphaned blocks.
A reorg deeper than the window cannot take settled blocks out of the rollups: the update
says so (`exact=False`) and the caller reports it (docs/onchain.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptopulse.domain.onchain import (
    ROLLUP_INTERVALS,
    AddressSketch,
    Block,
    BlockMetrics,
    TokenActivity,
    TokenBlockMetrics,
    TrackedToken,
    WhaleTransfer,
    active_addresses,
    block_metrics,
    token_metrics,
)

__all__ = [
    "BlockUpdate",
    "ChainRollup",
    "OnchainAccumulator",
    "RollbackUpdate",
    "TokenRollup",
]

CHAIN = ""  # the series key of chain-wide buckets; token buckets use the token address
# Chain buckets sum these; token buckets the second set.
CHAIN_SUMS = (
    "blocks",
    "tx_count",
    "gas_used",
    "gas_limit",
    "base_fee_sum",
    "base_fee_blocks",
    "priority_fee_sum",
    "deployments",
)
TOKEN_SUMS = ("transfers", "volume", "inflow", "outflow", "whales")

BucketKey = tuple[str, str, int]  # (series, interval, open_time)


@dataclass(frozen=True, slots=True)
class ChainRollup:
    chain: str
    interval: str
    open_time: int
    blocks: int
    tx_count: int
    active_addresses: int  # HyperLogLog estimate (exact while small)
    gas_used: int
    gas_limit: int
    utilisation: float
    base_fee_gwei: float | None  # mean over the blocks
    priority_fee_gwei: float | None  # mean over the transactions
    deployments: int
    sketch: bytes


@dataclass(frozen=True, slots=True)
class TokenRollup:
    chain: str
    token: str
    symbol: str
    interval: str
    open_time: int
    transfers: int
    volume: float
    senders: int
    receivers: int
    inflow: float
    outflow: float
    whales: int
    senders_sketch: bytes
    receivers_sketch: bytes


@dataclass(frozen=True, slots=True)
class BlockUpdate:
    """What one new block changed."""

    block: BlockMetrics
    tokens: list[TokenBlockMetrics]
    whales: list[WhaleTransfer]
    rollups: list[ChainRollup]
    token_rollups: list[TokenRollup]


@dataclass(frozen=True, slots=True)
class RollbackUpdate:
    """What a rollback changed: blocks above `ancestor` are gone, these buckets recomputed
    (a bucket left with no block comes back with zero counts: delete it)."""

    ancestor: int
    removed: list[int]
    rollups: list[ChainRollup]
    token_rollups: list[TokenRollup]
    exact: bool = True  # False: the reorg reached settled blocks (deeper than the window)


@dataclass(slots=True)
class _Bucket:
    sums: dict[str, float] = field(default_factory=dict)
    sketches: dict[str, AddressSketch] = field(default_factory=dict)

    def add(self, sums: Mapping[str, float], sets: Mapping[str, Iterable[str]]) -> None:
        for name, value in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        for name, addresses in sets.items():
            self._sketch(name).add_all(addresses)

    def merge(self, other: _Bucket) -> None:
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        for name, sketch in other.sketches.items():
            self._sketch(name).merge(sketch)

    def copy(self) -> _Bucket:
        twin = _Bucket()
        twin.merge(self)
        return twin

    def _sketch(self, name: str) -> AddressSketch:
        sketch = self.sketches.get(name)
        if sketch is None:
            sketch = self.sketches[name] = AddressSketch()
        return sketch

    def get(self, name: str) -> float:
        return self.sums.get(name, 0.0)

    def distinct(self, name: str) -> tuple[int, bytes]:
        sketch = self.sketches.get(name) or AddressSketch()
        return sketch.estimate(), sketch.to_bytes()


@dataclass(frozen=True, slots=True)
class _Share:
    """One block's contribution to one series: sums and address sets."""

    series: str
    sums: dict[str, float]
    sets: dict[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class _Recent:
    number: int
    hash: str
    time: int
    shares: tuple[_Share, ...]


def _chain_share(block: Block, metrics: BlockMetrics) -> _Share:
    sums = {
        "blocks": 1.0,
        "tx_count": float(metrics.tx_count),
        "gas_used": float(metrics.gas_used),
        "gas_limit": float(metrics.gas_limit),
        "deployments": float(metrics.deployments),
    }
    if metrics.base_fee_gwei is not None:
        sums["base_fee_sum"] = metrics.base_fee_gwei
        sums["base_fee_blocks"] = 1.0
    if metrics.priority_fee_gwei is not None:
        sums["priority_fee_sum"] = metrics.priority_fee_gwei * metrics.tx_count
    return _Share(CHAIN, sums, {"addresses": frozenset(active_addresses(block))})


def _token_share(activity: TokenActivity) -> _Share:
    m = activity.metrics
    sums = {
        "transfers": float(m.transfers),
        "volume": m.volume,
        "inflow": m.inflow,
        "outflow": m.outflow,
        "whales": float(m.whales),
    }
    return _Share(m.token, sums, {"senders": activity.senders, "receivers": activity.receivers})


class OnchainAccumulator:
    """Per-block metrics and hour/day rollups of one chain, undoable for `window` blocks."""

    def __init__(
        self,
        chain: str,
        tokens: Mapping[str, TrackedToken],
        exchanges: Mapping[str, str],
        window: int = 128,
    ) -> None:
        self.chain = chain
        self.tokens = dict(tokens)
        self.exchanges = dict(exchanges)
        self.window = window
        self._recent: deque[_Recent] = deque()
        self._settled: dict[BucketKey, _Bucket] = {}
        self._live: dict[BucketKey, _Bucket] = {}
        self._head: tuple[int, str] | None = None

    @property
    def head(self) -> tuple[int, str] | None:
        """Number and hash of the newest block applied."""
        return self._head

    def restore(
        self,
        head: tuple[int, str],
        buckets: Iterable[tuple[str, str, int, Mapping[str, float], Mapping[str, bytes]]],
    ) -> None:
        """Continue after a restart: `buckets` are stored rollups (series, interval,
        open_time, sums, sketches) taken as settled. Reorgs below `head` then exceed the
        window."""
        self._head = head
        for series, interval, open_time, sums, sketches in buckets:
            bucket = _Bucket(
                dict(sums), {k: AddressSketch.from_bytes(v) for k, v in sketches.items()}
            )
            self._settled[(series, interval, open_time)] = bucket
            self._live[(series, interval, open_time)] = bucket.copy()

    def add(self, block: Block) -> BlockUpdate:
        """Apply the next block (numbers must increase; reorgs go through `rollback`)."""
        if self._head is not None and block.number <= self._head[0]:
            raise ValueError(f"block {block.number} is not above head {self._head[0]}")
        metrics = block_metrics(block)
        activity, whales = token_metrics(block, self.tokens, self.exchanges)
        shares = (_chain_share(block, metrics), *(_token_share(a) for a in activity))
        touched: list[BucketKey] = []
        for share in shares:
            for interval, length in ROLLUP_INTERVALS.items():
                key = (share.series, interval, block.time - block.time % length)
                self._live.setdefault(key, _Bucket()).add(share.sums, share.sets)
                touched.append(key)
        self._recent.append(_Recent(block.number, block.hash, block.time, shares))
        self._head = (block.number, block.hash)
        while len(self._recent) > self.window:
            self._settle(self._recent.popleft())
        rollups, token_rollups = self._outputs(touched)
        return BlockUpdate(metrics, [a.metrics for a in activity], whales, rollups, token_rollups)

    def rollback(self, ancestor: int, ancestor_hash: str) -> RollbackUpdate:
        """Forget every block above `ancestor` (the newest block both forks share)."""
        removed = [r for r in self._recent if r.number > ancestor]
        # Orphaned blocks already settled stay counted: the rollback is then not exact.
        first = removed[0].number if removed else (self._head[0] + 1 if self._head else 0)
        exact = first <= ancestor + 1
        touched: set[BucketKey] = set()
        for gone in removed:
            self._recent.pop()
            for share in gone.shares:
                for interval, length in ROLLUP_INTERVALS.items():
                    touched.add((share.series, interval, gone.time - gone.time % length))
        for key in touched:
            self._rebuild(key)
        self._head = (ancestor, ancestor_hash)
        rollups, token_rollups = self._outputs(sorted(touched))
        for key in touched:
            if not self._live[key].get("blocks") and not self._live[key].get("transfers"):
                del self._live[key]
        removed_numbers = [r.number for r in removed]
        return RollbackUpdate(ancestor, removed_numbers, rollups, token_rollups, exact)

    def _rebuild(self, key: BucketKey) -> None:
        series, interval, open_time = key
        length = ROLLUP_INTERVALS[interval]
        settled = self._settled.get(key)
        bucket = settled.copy() if settled is not None else _Bucket()
        for recent in self._recent:
            if recent.time - recent.time % length != open_time:
                continue
            for share in recent.shares:
                if share.series == series:
                    bucket.add(share.sums, share.sets)
        self._live[key] = bucket

    def _settle(self, recent: _Recent) -> None:
        for share in recent.shares:
            for interval, length in ROLLUP_INTERVALS.items():
                key = (share.series, interval, recent.time - recent.time % length)
                self._settled.setdefault(key, _Bucket()).add(share.sums, share.sets)
        # Buckets that ended before the oldest undoable block can no longer change.
        oldest = self._recent[0].time if self._recent else recent.time
        for key in [k for k in self._settled if k[2] + ROLLUP_INTERVALS[k[1]] <= oldest]:
            del self._settled[key]
            self._live.pop(key, None)

    def _outputs(self, keys: Iterable[BucketKey]) -> tuple[list[ChainRollup], list[TokenRollup]]:
        rollups: list[ChainRollup] = []
        token_rollups: list[TokenRollup] = []
        for key in dict.fromkeys(keys):
            bucket = self._live.get(key) or _Bucket()
            if key[0] == CHAIN:
                rollups.append(self._chain_rollup(key, bucket))
            else:
                token_rollups.append(self._token_rollup(key, bucket))
        return rollups, token_rollups

    def _chain_rollup(self, key: BucketKey, b: _Bucket) -> ChainRollup:
        _, interval, open_time = key
        addresses, sketch = b.distinct("addresses")
        base_blocks, txs = b.get("base_fee_blocks"), b.get("tx_count")
        return ChainRollup(
            chain=self.chain,
            interval=interval,
            open_time=open_time,
            blocks=int(b.get("blocks")),
            tx_count=int(txs),
            active_addresses=addresses,
            gas_used=int(b.get("gas_used")),
            gas_limit=int(b.get("gas_limit")),
            utilisation=b.get("gas_used") / b.get("gas_limit") if b.get("gas_limit") else 0.0,
            base_fee_gwei=b.get("base_fee_sum") / base_blocks if base_blocks else None,
            priority_fee_gwei=b.get("priority_fee_sum") / txs if txs else None,
            deployments=int(b.get("deployments")),
            sketch=sketch,
        )

    def _token_rollup(self, key: BucketKey, b: _Bucket) -> TokenRollup:
        token, interval, open_time = key
        senders, senders_sketch = b.distinct("senders")
        receivers, receivers_sketch = b.distinct("receivers")
        known = self.tokens.get(token)
        return TokenRollup(
            chain=self.chain,
            token=token,
            symbol=known.symbol if known is not None else "",
            interval=interval,
            open_time=open_time,
            transfers=int(b.get("transfers")),
            volume=b.get("volume"),
            senders=senders,
            receivers=receivers,
            inflow=b.get("inflow"),
            outflow=b.get("outflow"),
            whales=int(b.get("whales")),
            senders_sketch=senders_sketch,
            receivers_sketch=receivers_sketch,
        )
