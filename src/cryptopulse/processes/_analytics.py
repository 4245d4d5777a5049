"""Analytics in scale-out API workers (docs/scale-out.md, "Analytics").

API workers have no pipeline: they follow the closed candles on the bus (the
`candles:<instrument>:<interval>` channels, messages with `closed: true`, read by the
bus's own reader, one XREAD per worker for all channels) and feed them to their local
analytics and prediction services, so REST answers from memory on every worker. One of
them, the leader elected with a Redis lock (`AnalyticsLeader`), publishes `signals:*`,
`grades`, `sectors`, `predictions:*`, writes analytics history and evaluates the alert
rules on signals, grades and sectors; the others compute the same thing silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from cryptopulse.analytics._leader import AnalyticsLeader, LeaderBus, LeaderStore
from cryptopulse.bus import BusUnavailable, Message
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain.models import Candle
from cryptopulse.runtime import Services

__all__ = ["ClosedCandleFollower", "follow_analytics", "lead_analytics"]

log = logging.getLogger(__name__)

DISCOVER_S = 2.0  # how often new candle channels are looked for
_QUEUE = 100_000
# Channels the analytics leader publishes (their seqs are taken over on election).
PUBLISHED = ("signals:", "predictions:", "grades", "sectors")


def publishes(channel: str) -> bool:
    return channel in ("grades", "sectors") or channel.startswith(PUBLISHED[:2])


class ClosedCandleFollower:
    """Bus subscriber of candle channels passing closed candles to the services' hooks, in
    the order read (one consumer task)."""

    def __init__(self) -> None:
        self.hooks: list[Callable[[Candle], Any]] = []
        self.received = 0
        self.dropped = 0
        self._queue: asyncio.Queue[Candle] = asyncio.Queue(_QUEUE)

    def deliver(self, message: Message) -> None:
        # Open candles change on every trade; only the closed one feeds analytics.
        if b'"closed":true' not in message.data:
            return
        try:
            self._queue.put_nowait(Candle(**orjson.loads(message.data)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            candle = await self._queue.get()
            self.received += 1
            for hook in self.hooks:
                try:
                    await hook(candle)
                except Exception:
                    log.exception("closed candle hook failed on %s", candle.instrument)


def lead_analytics(services: Services, bus: RedisBus) -> AnalyticsLeader:
    """Route the analytics and prediction services' output through a leader election:
    published and stored only while this process holds the lock."""
    settings = services.settings
    leader = AnalyticsLeader(
        bus.redis, f"{bus.keys.prefix}leader:analytics", settings.analytics_leader_ttl_s
    )
    gated = LeaderBus(services.bus, leader)

    async def claim() -> None:
        # Continue the seqs the previous leader left in Redis before publishing anything.
        await bus.claim_channels(publishes)

    leader.on_elected.append(claim)
    analytics = services.analytics
    if analytics is not None:
        analytics.bus = gated
        analytics.store = LeaderStore(services.store, leader)
        # Alert rules on signals, grades and sectors fire once: in the leader.
        analytics.signal_hooks[:] = [_gate(leader, h) for h in analytics.signal_hooks]
        analytics.state_hooks[:] = [_gate(leader, h) for h in analytics.state_hooks]
    if services.predictions is not None:
        services.predictions.bus = gated
    return leader


def _gate(leader: AnalyticsLeader, hook: Callable[..., None]) -> Callable[..., None]:
    def gated(*args: Any) -> None:
        if leader.leading:
            hook(*args)

    return gated


async def follow_analytics(services: Services) -> None:
    """Supervisor of an API worker: elect the analytics leader and follow the closed
    candles of every candle channel (new channels are found every `DISCOVER_S`)."""
    bus = services.bus
    analytics, predictions = services.analytics, services.predictions
    if not isinstance(bus, RedisBus) or (analytics is None and predictions is None):
        return
    leader = lead_analytics(services, bus)
    follower = ClosedCandleFollower()
    for service in (analytics, predictions):
        if service is not None:
            follower.hooks.append(service.on_closed_candle)
    services.analytics_leader = leader
    consumer = asyncio.create_task(follower.run(), name="closed-candles")
    await leader.start()
    followed: set[str] = set()
    try:
        while True:
            try:
                await _discover(bus, follower, followed)
            except BusUnavailable:
                log.debug("candle channels not listed: redis unavailable")
            await asyncio.sleep(DISCOVER_S)
    finally:
        consumer.cancel()
        # Write what is pending while still leading, then let another process take over.
        if analytics is not None:
            await analytics.stop()
        await leader.stop()


async def _discover(bus: RedisBus, follower: ClosedCandleFollower, followed: set[str]) -> None:
    for channel in await bus.published_channels():
        if channel.startswith("candles:") and channel not in followed:
            subscription = await bus.subscribe(channel, follower)
            followed.add(channel)
            # The newest message may be a close this worker has not seen (duplicates and
            # older candles are ignored by the services).
            if subscription.snapshot is not None:
                follower.deliver(subscription.snapshot)
