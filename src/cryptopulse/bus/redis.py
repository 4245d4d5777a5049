"""The scale-out bus: one Redis Stream per channel (see `_redis_keys` for the layout).

- **seq** is the stream entry id's first part (`<seq>-0`). The ingest shard that owns a
  channel numbers its messages (seqs continue across its restarts: it loads them from
  Redis first), so every API replica serves the same seq for the same message and a client
  can resume against any of them.
- **Publishing** queues locally and writes in pipelined batches (`_redis_outbox`).
- **Reading**: each process follows the channels it has subscribers for, with one XREAD
  for all of them, and fans out locally (`_redis_reader`).
- **Epoch**: set when a channel's metadata is created in Redis; a new one means the
  history was lost. Readers then send `gap` + snapshot (or carry on when the publisher's
  outbox kept everything).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from cryptopulse.bus._redis_keys import Keys, as_int, entry_message, entry_seq
from cryptopulse.bus._redis_outbox import Outbox, RedisDown
from cryptopulse.bus._redis_reader import Reader
from cryptopulse.bus.base import BusUnavailable, Gap, Message, Subscriber, Subscription

__all__ = ["RedisBus"]

# Pending publishes get this long to reach Redis at shutdown.
CLOSE_FLUSH_S = 5.0


def _client(url: str, timeout_s: float, read_timeout_s: float) -> Redis:
    # No client-side retries: callers decide (503, error frames, the outbox's backoff).
    client: Redis = Redis.from_url(
        url,
        socket_timeout=read_timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        protocol=2,
    )
    return client


class RedisBus:
    """The `Bus` over Redis Streams."""

    def __init__(
        self,
        url: str,
        history: int = 1000,
        *,
        prefix: str = "cp:",
        timeout_s: float = 0.8,
        outbox: int = 100_000,
        block_ms: int = 100,
    ) -> None:
        self.url = url
        self.history = history
        self.keys = Keys(prefix)
        self._timeout_s = timeout_s
        self.redis = _client(url, timeout_s, max(timeout_s, 5.0))
        # A blocking XREAD holds its connection: the reader gets its own client.
        self._reader_redis = _client(url, timeout_s, block_ms / 1000 + timeout_s)
        self.outbox = Outbox(self.redis, self.keys, history, outbox)
        self.reader = Reader(self._reader_redis, self.keys, block_ms)
        self._reader_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self.reader.run(), name="redis-bus-reader")

    async def close(self) -> None:
        await self.outbox.close(CLOSE_FLUSH_S)
        if self._reader_task is not None:
            self.reader.stop()
            done, _ = await asyncio.wait([self._reader_task], timeout=self._timeout_s + 1.0)
            if not done:
                self._reader_task.cancel()
            self._reader_task = None
        await self.redis.aclose()
        await self._reader_redis.aclose()

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                return bool(await self.redis.ping())
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc

    async def prepare_publisher(self) -> None:
        """Load the channels' seqs from Redis (the first publish does it otherwise)."""
        await self.outbox.prepare()

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        await self.outbox.prepare()
        message = self.outbox.put(channel, data, time)
        await self.outbox.wait_room(self._timeout_s)
        return message

    async def flush(self, timeout_s: float = CLOSE_FLUSH_S) -> bool:
        """Wait until every published message is in Redis (False after `timeout_s`)."""
        return await self.outbox.flush(timeout_s)

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        # Registered first: anything the reader reads from now on reaches the subscriber,
        # and the answer below covers at least everything it read before.
        follow = self.reader.add(channel, subscriber)
        follow.answering += 1
        try:
            await self.start()
            async with asyncio.timeout(self._timeout_s):
                subscription, top, epoch = await self._answer(channel, resume_after)
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        finally:
            follow.answering -= 1
        follow.resolve(top, epoch)
        return subscription

    async def _answer(
        self, channel: str, resume_after: int | None
    ) -> tuple[Subscription, int, int | None]:
        key = self.keys.stream(channel)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.meta(channel), "epoch")
        pipe.xrevrange(key, "+", "-", count=1)
        pipe.xrange(key, "-", "+", count=1)
        raw_epoch, newest, oldest = await pipe.execute()
        epoch = as_int(raw_epoch)
        latest = entry_message(channel, newest[0]) if newest else None
        top = latest.seq if latest else 0
        if resume_after is None:
            return Subscription([], None, latest), top, epoch
        if resume_after == top:
            return Subscription([], None, None), top, epoch
        first = entry_seq(oldest[0][0]) if oldest else top + 1
        if resume_after > top:
            return Subscription([], Gap(1, top), latest), top, epoch
        if resume_after + 1 < first:
            return Subscription([], Gap(resume_after + 1, first - 1), latest), top, epoch
        entries: Any = await self.redis.xrange(key, f"{resume_after + 1}-0", f"{top}-0")
        replay = [entry_message(channel, entry) for entry in entries]
        return Subscription(replay, None, None), top, epoch

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        self.reader.remove(channel, subscriber)

    async def latest(self, channel: str) -> Message | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                newest: Any = await self.redis.xrevrange(
                    self.keys.stream(channel), "+", "-", count=1
                )
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        return entry_message(channel, newest[0]) if newest else None

    async def published_channels(self) -> list[str]:
        """Every channel any process has published (the `channels` set in Redis)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                members: Any = await self.redis.smembers(self.keys.channels)
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        return sorted(m.decode() for m in members)

    async def claim_channels(self, match: Callable[[str], bool]) -> None:
        """Continue the numbering of the channels `match` selects from Redis: this process
        takes over publishing them from another (the analytics leader)."""
        names = [c for c in await self.published_channels() if match(c)]
        await self.outbox.reload(names)

    def channels(self) -> list[str]:
        """Channels this process published or follows (not every channel in Redis)."""
        return sorted(set(self.outbox.epochs) | set(self.reader.follows))

    # --- shared state between ingest and API processes ---------------------------------

    async def latest_state(self) -> dict[str, bytes]:
        """The latest-state cache: `ticker:` channel -> payload of its newest message."""
        return await self._hgetall(self.keys.latest)

    async def put_state(self, name: str, mapping: dict[str, bytes]) -> None:
        """Replace the fields of the shared hash `name` (ingest -> API workers)."""
        if not mapping:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self.redis.hset(self.keys.state(name), mapping=mapping)  # type: ignore[arg-type]
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc

    async def get_state(self, name: str) -> dict[str, bytes]:
        return await self._hgetall(self.keys.state(name))

    async def _hgetall(self, key: str) -> dict[str, bytes]:
        try:
            async with asyncio.timeout(self._timeout_s):
                raw: Any = await self.redis.hgetall(key)
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        return {k.decode(): v for k, v in raw.items()}
