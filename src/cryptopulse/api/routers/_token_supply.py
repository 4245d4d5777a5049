"""On-chain total supplies for the token registry's FDV (`/v1/tokens`): each tracked token's
latest `totalSupply()` read, with the time of the block it was read at."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from cryptopulse.domain.tokens import OnchainSupply
from cryptopulse.onchain import ChainFeed, OnchainService
from cryptopulse.store.onchain import SupplyRow

__all__ = ["onchain_supplies"]

# A supply read further below the newest stored block is not looked up (it is stale anyway:
# the source re-reads every `supply_refresh_blocks`, 300 by default).
_MAX_DEPTH = 4096
# (chain, token, block) -> block time; a read's block time never changes (a reorg would
# bring a new read at a new block), so entries are kept for the service's life.
_times: WeakKeyDictionary[OnchainService, dict[tuple[str, str, int], int]] = WeakKeyDictionary()


async def onchain_supplies(onchain: OnchainService | None) -> dict[str, list[OnchainSupply]]:
    """Token symbol -> its latest supply read on each chain that tracks it (reads whose
    block time cannot be found are left out)."""
    if onchain is None:
        return {}
    cache = _times.setdefault(onchain, {})
    out: dict[str, list[OnchainSupply]] = {}
    for feed in onchain.chains.values():
        for row in list(feed.supplies.values()):
            key = (row.chain, row.token, row.block_number)
            time = cache.get(key)
            if time is None:
                time = await _block_time(onchain, feed, row)
                if time is None:
                    continue
                cache[key] = time
            supply = OnchainSupply(row.chain, row.token, row.block_number, time, row.total_supply)
            out.setdefault(row.symbol.upper(), []).append(supply)
    return out


async def _block_time(onchain: OnchainService, feed: ChainFeed, row: SupplyRow) -> int | None:
    status = feed.status
    # The source reads supplies right after delivering its newest block.
    if status.processed == row.block_number and status.last_block_time is not None:
        return status.last_block_time
    newest = await onchain.store.last_blocks(row.chain, 1)
    if not newest:
        return None
    depth = newest[-1][0] - row.block_number + 1
    if not 1 <= depth <= _MAX_DEPTH:
        return None
    for number, _, time in await onchain.store.last_blocks(row.chain, depth):
        if number == row.block_number:
            return time
    return None
