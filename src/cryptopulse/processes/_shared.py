"""What an ingest process shares with API replicas through Redis besides the bus: which
source each instrument comes from, and the feeds' health (small hashes, rewritten every
second)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import orjson

from cryptopulse.bus import BusUnavailable
from cryptopulse.bus.redis import RedisBus
from cryptopulse.sources.base import FeedStatus
from cryptopulse.state import MarketState

log = logging.getLogger(__name__)

SHARE_EVERY_S = 1.0


def _sources(market: MarketState) -> dict[str, bytes]:
    # Replayed instruments are known from their tickers before the replay source lists them.
    kinds = {name: kind.encode() for name, kind in market.sources.items()}
    mode = market.mode.encode()
    for name in market.tickers:
        if ":" in name and name not in kinds:
            kinds[name] = mode
    return kinds


def _feeds(market: MarketState, owner: str) -> dict[str, bytes]:
    return {
        f"{owner}/{status.name}": orjson.dumps(dataclasses.asdict(status))
        for status in market.feeds.values()
    }


async def share_state(bus: RedisBus, market: MarketState, owner: str) -> None:
    """Ingest side: write sources and feeds every second until cancelled."""
    while True:
        try:
            await bus.put_state("sources", _sources(market))
            await bus.put_state("feeds", _feeds(market, owner))
        except BusUnavailable:
            log.debug("shared state not written: redis unavailable")
        await asyncio.sleep(SHARE_EVERY_S)


async def load_state(bus: RedisBus, market: MarketState) -> None:
    """API side: copy sources and feeds into this worker's market state."""
    for name, kind in (await bus.get_state("sources")).items():
        market.note_instrument(name, kind.decode())
    feeds: dict[str, FeedStatus] = {}
    for key, raw in (await bus.get_state("feeds")).items():
        fields = orjson.loads(raw)
        fields["name"] = key
        feeds[key] = FeedStatus(**fields)
    market.feeds.clear()
    market.feeds.update(feeds)
