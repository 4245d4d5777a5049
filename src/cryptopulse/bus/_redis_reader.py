"""The reading side of the Redis bus: one task per process follows every channel that has
a local subscriber, with one blocking `XREAD` over all of them, and fans out locally.

It also watches each channel's epoch: when Redis lost a channel's history (flushed or
restarted without persistence), subscribers that are `BusListener`s get a gap and a
snapshot instead of silence, and when Redis is unreachable they hear so at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from cryptopulse.bus._redis_keys import Keys, as_int, entry_message
from cryptopulse.bus._redis_outbox import RedisDown
from cryptopulse.bus.base import BusListener, Gap, Message, Subscriber

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 1.0


class Follow:
    """One channel followed by this process, with its local subscribers."""

    __slots__ = ("answering", "channel", "epoch", "key", "last_seq", "resolved", "subscribers")

    def __init__(self, channel: str, key: str) -> None:
        self.channel = channel
        self.key = key
        self.last_seq = 0  # the last seq read (and delivered)
        self.epoch: int | None = None
        # False until the position to read from is known (a subscribe answered by Redis).
        self.resolved = False
        # Subscribes being answered from Redis right now: they resolve the position
        # themselves, and a snapshot from the reader meanwhile would overtake their replay.
        self.answering = 0
        self.subscribers: list[Subscriber] = []

    def resolve(self, seq: int, epoch: int | None) -> None:
        if not self.resolved:
            self.resolved, self.last_seq, self.epoch = True, seq, epoch

    def deliver(self, message: Message) -> None:
        for subscriber in tuple(self.subscribers):
            subscriber.deliver(message)

    def resync(self, gap: Gap | None, snapshot: Message | None, reset: bool) -> None:
        for subscriber in tuple(self.subscribers):
            if isinstance(subscriber, BusListener):
                subscriber.on_resync(self.channel, gap, snapshot, reset)
            elif snapshot is not None:
                subscriber.deliver(snapshot)


class Reader:
    """Follows channels with one XREAD per round and dispatches entries to subscribers."""

    def __init__(self, redis: Redis, keys: Keys, block_ms: int = 100, check_s: float = 1.0):
        self._redis = redis
        self._keys = keys
        self._block_ms = block_ms
        self._check_s = check_s
        self.follows: dict[str, Follow] = {}
        self._wake = asyncio.Event()
        self._next_check = 0.0
        self._stopping = False
        self.down = False

    def add(self, channel: str, subscriber: Subscriber) -> Follow:
        follow = self.follows.get(channel)
        if follow is None:
            follow = self.follows[channel] = Follow(channel, self._keys.stream(channel))
            self._wake.set()
        if subscriber not in follow.subscribers:
            follow.subscribers.append(subscriber)
        return follow

    def remove(self, channel: str, subscriber: Subscriber) -> None:
        follow = self.follows.get(channel)
        if follow is None:
            return
        if subscriber in follow.subscribers:
            follow.subscribers.remove(subscriber)
        if not follow.subscribers:
            del self.follows[channel]

    def stop(self) -> None:
        """End `run` after the current read (cancelling redis-py mid-XREAD can hang it)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.05
        while not self._stopping:
            if not self.follows:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if self.down or loop.time() >= self._next_check:
                    await self._check()
                    self._next_check = loop.time() + self._check_s
                await self._read_once()
            except RedisDown as exc:
                self._went_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
                continue
            if self.down:
                log.warning("redis bus: reading resumed")
                self.down = False
            backoff = 0.05

    def _went_down(self, exc: BaseException) -> None:
        if self.down:
            return
        self.down = True
        log.warning("redis bus: reading paused (%s)", exc)
        for follow in list(self.follows.values()):
            for subscriber in tuple(follow.subscribers):
                if isinstance(subscriber, BusListener):
                    subscriber.on_unavailable(follow.channel)

    async def _read_once(self) -> None:
        streams: dict[Any, Any] = {
            f.key: f"{f.last_seq}-0" for f in self.follows.values() if f.resolved
        }
        if not streams:
            self._next_check = 0.0  # only unresolved channels: resolve them soon
            await asyncio.sleep(self._block_ms / 1000)
            return
        reply = await self._redis.xread(streams, count=1000, block=self._block_ms)
        for key, entries in _pairs(reply):
            follow = self.follows.get(self._keys.channel_of(key))
            if follow is not None and follow.resolved:
                self._dispatch(follow, entries)

    def _dispatch(self, follow: Follow, entries: Iterable[Any]) -> None:
        for entry in entries:
            message = entry_message(follow.channel, entry)
            if message.seq <= follow.last_seq:
                continue
            follow.epoch = message.epoch  # seq continuity below decides if anything was lost
            if follow.last_seq and message.seq > follow.last_seq + 1:
                # Trimmed or dropped while we were away: say so, with the message as snapshot.
                follow.resync(Gap(follow.last_seq + 1, message.seq - 1), message, False)
            else:
                follow.deliver(message)
            follow.last_seq = message.seq

    async def _check(self) -> None:
        """Resolve channels subscribed while Redis was away; detect lost histories."""
        follows = list(self.follows.values())
        pipe = self._redis.pipeline(transaction=False)
        for follow in follows:
            pipe.hget(self._keys.meta(follow.channel), "epoch")
        epochs = [as_int(e) for e in await pipe.execute()]
        for follow, epoch in zip(follows, epochs, strict=True):
            if not follow.resolved:
                if follow.answering:
                    continue
                newest = await self._edge(follow, newest=True)
                follow.resolve(newest.seq if newest else 0, epoch)
                if newest is not None:
                    follow.resync(None, newest, False)
            elif epoch is not None and follow.epoch is not None and epoch != follow.epoch:
                await self._history_lost(follow, epoch)
            elif follow.epoch is None:
                follow.epoch = epoch

    async def _history_lost(self, follow: Follow, epoch: int) -> None:
        oldest = await self._edge(follow, newest=False)
        newest = await self._edge(follow, newest=True)
        log.warning("redis bus: %s lost its history (new epoch %d)", follow.channel, epoch)
        follow.epoch = epoch
        if oldest is None or newest is None:
            return
        if newest.seq < follow.last_seq:
            # Numbering restarted (Redis and every publisher restarted): start over.
            follow.resync(Gap(1, max(newest.seq - 1, 0)), newest, True)
        elif oldest.seq > follow.last_seq + 1:
            follow.resync(Gap(follow.last_seq + 1, newest.seq - 1), newest, False)
        else:
            return  # the publisher's outbox kept every message: nothing was lost
        follow.last_seq = newest.seq

    async def _edge(self, follow: Follow, *, newest: bool) -> Message | None:
        entries: Any
        if newest:
            entries = await self._redis.xrevrange(follow.key, "+", "-", count=1)
        else:
            entries = await self._redis.xrange(follow.key, "-", "+", count=1)
        if not entries:
            return None
        return entry_message(follow.channel, entries[0])


def _pairs(reply: Any) -> Iterable[tuple[Any, Any]]:
    """XREAD's reply as (stream, entries) pairs, for RESP2 (list) and RESP3 (dict)."""
    if not reply:
        return ()
    if isinstance(reply, dict):
        return [(k, v[0] if v and isinstance(v[0], list) else v) for k, v in reply.items()]
    return [(k, v) for k, v in reply]
