"""An API replica in scale-out: no sources; the latest state comes from Redis.

On start a worker loads the latest-state cache (every ticker's newest payload) and the
instruments' sources, then follows every `ticker:` channel on the bus, so REST tickers are
as fresh as the stream (one XREAD for all channels per worker, shared with stream clients).
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from cryptopulse.bus import BusUnavailable, Message
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain.models import Ticker
from cryptopulse.processes._metrics import BusCollector
from cryptopulse.processes._shared import load_state
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.state import MarketState

log = logging.getLogger(__name__)

REFRESH_S = 2.0


def is_scale_out(settings: Settings) -> bool:
    """A bus other than memory:// means API and ingest run as separate processes."""
    return not settings.bus_url.startswith("memory://")


def api_services(settings: Settings) -> Services:
    """Services of an API-only worker: no sources, market state followed from the bus,
    analytics computed from the closed candles on the bus (published by one leader)."""
    from cryptopulse.processes._analytics import follow_analytics

    services = Services.create(settings, sources=[], supervisors=[follow_market, follow_analytics])
    services.role = "api"
    return services


def migrate_once(settings: Settings) -> None:
    """Migrate before API workers start (they do not migrate themselves in scale-out)."""
    from cryptopulse.processes._migrate import migrate_locked
    from cryptopulse.store.sql import SQLStore

    async def run() -> None:
        store = SQLStore(settings.database_url)
        try:
            await migrate_locked(store)
        finally:
            await store.close()

    asyncio.run(run())


class TickerFollower:
    """Bus subscriber keeping `MarketState.tickers` current (never blocks)."""

    def __init__(self, market: MarketState) -> None:
        self.market = market

    def deliver(self, message: Message) -> None:
        apply_ticker(self.market, message.data)


def apply_ticker(market: MarketState, data: bytes) -> None:
    ticker = Ticker(**orjson.loads(data))
    current = market.tickers.get(ticker.instrument)
    if current is None or current.time <= ticker.time:
        market.tickers[ticker.instrument] = ticker


async def follow_market(services: Services) -> None:
    """Supervisor of an API worker: load the cache, then follow new ticker channels."""
    bus = services.bus
    if not isinstance(bus, RedisBus):
        return
    BusCollector.bind(bus)
    follower = TickerFollower(services.market)
    followed: set[str] = set()
    while True:
        try:
            await _refresh(bus, services.market, follower, followed)
        except BusUnavailable:
            log.debug("market state not refreshed: redis unavailable")
        except Exception:
            log.exception("market state refresh failed; continuing")
        await asyncio.sleep(REFRESH_S)


async def _refresh(
    bus: RedisBus, market: MarketState, follower: TickerFollower, followed: set[str]
) -> None:
    await load_state(bus, market)
    for channel, data in (await bus.latest_state()).items():
        if channel in followed:
            continue
        apply_ticker(market, data)
        await bus.subscribe(channel, follower)
        followed.add(channel)
