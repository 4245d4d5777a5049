"""One publisher of analytics in scale-out: a leader elected with a Redis lock.

Every API process computes indicators, signals, grades, sectors and predictions from the
same closed candles (followed on the bus), so each answers REST from memory. Only the
leader publishes `signals:*`, `grades`, `sectors` and `predictions:*` and writes analytics
history; the others compute silently. The lock is `SET key id NX PX ttl`, renewed every
third of the TTL by its holder and deleted on shutdown; when the holder dies, the key
lapses and the next process to try takes it over (within one TTL plus one try period).

A holder that cannot renew (Redis unreachable) stops leading when its last lease runs out,
before anyone else can take the key over, so two processes never publish at once unless
clocks run at very different speeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cryptopulse.bus.base import Bus, Message, Subscriber, Subscription, build_message
from cryptopulse.store.analytics import AnalyticsStore, GradeRow, SectorRow, SignalRow
from cryptopulse.store.sql import SQLStore

__all__ = ["AnalyticsLeader", "LeaderBus", "LeaderStore"]

log = logging.getLogger(__name__)

_RedisDown = (RedisError, OSError, TimeoutError)

# Renew (or retry) `key` only if we still hold it: compare-and-set on the holder id.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AnalyticsLeader:
    """Holds (or waits for) the analytics lock in Redis; `leading` says whether this process
    publishes now. `on_elected` callbacks run each time it becomes the leader."""

    def __init__(self, redis: Redis, key: str, ttl_s: float = 5.0) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(int(ttl_s * 1000), 300)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.on_elected: list[Callable[[], Awaitable[None]]] = []
        self.elections = 0
        self._lease_until = 0.0  # monotonic: leading until then unless renewed
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._lease_until

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="analytics-leader")

    async def stop(self) -> None:
        """Stop trying and release the lock (another process takes over at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was = self.leading
        self._lease_until = 0.0
        if was:
            with contextlib.suppress(*_RedisDown):
                async with asyncio.timeout(1.0):
                    await self.redis.eval(_RELEASE_LUA, 1, self.key, self.identity)

    async def _run(self) -> None:
        period = self.ttl_ms / 3000
        while True:
            try:
                await self.try_lead()
            except _RedisDown as exc:
                log.debug("analytics leader: redis unavailable (%s)", exc)
            except Exception:
                log.exception("analytics leader: election failed; retrying")
            await asyncio.sleep(period)

    async def try_lead(self) -> bool:
        """One round: renew the lock if held, else try to take it. True while leading."""
        sent = time.monotonic()  # the lease counts from before the request left
        was = self.leading
        async with asyncio.timeout(self.ttl_ms / 3000):
            if was:
                renewed = self.redis.eval(_RENEW_LUA, 1, self.key, self.identity, self.ttl_ms)
                held = bool(await renewed)
            else:
                held = bool(await self.redis.set(self.key, self.identity, nx=True, px=self.ttl_ms))
        if not held:
            if was:
                log.warning("analytics leader: lock lost to another process")
            self._lease_until = 0.0
            return False
        if not was:
            # Take over (seqs, kept history) before publishing anything as the leader.
            for callback in self.on_elected:
                try:
                    await callback()
                except Exception:
                    log.exception("analytics leader: taking over failed in part")
            self.elections += 1
            log.info("analytics leader: this process publishes analytics (%s)", self.identity)
        self._lease_until = sent + self.ttl_ms / 1000
        return True


class LeaderBus:
    """A `Bus` for the analytics and prediction services: publishes only while `leader`
    leads; otherwise the message is computed and dropped (never numbered)."""

    def __init__(self, bus: Bus, leader: AnalyticsLeader) -> None:
        self.inner = bus
        self.leader = leader
        self.suppressed = 0

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        if self.leader.leading:
            return await self.inner.publish(channel, data, time)
        self.suppressed += 1
        return build_message(channel, 0, time, data)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        return await self.inner.subscribe(channel, subscriber, resume_after)

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        await self.inner.unsubscribe(channel, subscriber)

    async def latest(self, channel: str) -> Message | None:
        return await self.inner.latest(channel)

    def channels(self) -> list[str]:
        return self.inner.channels()

    async def ping(self) -> bool:
        return await self.inner.ping()


# Rows a follower keeps for a takeover: what the last leader may not have written yet.
_KEEP_S = 60.0
_KEEP_ROWS = 50_000


class LeaderStore(AnalyticsStore):
    """Analytics history written only by the leader. A follower keeps what it would have
    written in the last minute and writes it when elected (upserts are idempotent), so a
    takeover leaves no hole where the old leader died before flushing."""

    def __init__(self, store: SQLStore, leader: AnalyticsLeader) -> None:
        super().__init__(store)
        self.leader = leader
        self._kept: deque[tuple[float, str, Sequence[Any]]] = deque()
        self._kept_rows = 0
        leader.on_elected.append(self.write_kept)

    def _keep(self, kind: str, rows: Sequence[Any]) -> None:
        now = time.monotonic()
        self._kept.append((now, kind, list(rows)))
        self._kept_rows += len(rows)
        while self._kept and (self._kept[0][0] < now - _KEEP_S or self._kept_rows > _KEEP_ROWS):
            self._kept_rows -= len(self._kept.popleft()[2])

    async def write_kept(self) -> None:
        """Write the rows kept while following (called on election, before leading)."""
        kept, self._kept, self._kept_rows = self._kept, deque(), 0
        for _, kind, rows in kept:
            await getattr(AnalyticsStore, f"upsert_{kind}")(self, rows)

    async def upsert_signals(self, rows: Sequence[SignalRow]) -> None:
        if self.leader.leading:
            await super().upsert_signals(rows)
        elif rows:
            self._keep("signals", rows)

    async def upsert_grades(self, rows: Sequence[GradeRow]) -> None:
        if self.leader.leading:
            await super().upsert_grades(rows)
        elif rows:
            self._keep("grades", rows)

    async def upsert_sectors(self, rows: Sequence[SectorRow]) -> None:
        if self.leader.leading:
            await super().upsert_sectors(rows)
        elif rows:
            self._keep("sectors", rows)
