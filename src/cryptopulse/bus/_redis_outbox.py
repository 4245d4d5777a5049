"""The publishing side of the Redis bus: local seqs, a bounded outbox, batched writes.

`publish` never waits on Redis (after a one-time bootstrap of the seqs): it numbers the
message, queues it and returns. A background task writes the queue in pipelined batches of
the publish script, so a slow or absent Redis never stalls the pipeline. While Redis is
down the outbox keeps the newest `capacity` messages; older ones are dropped and counted,
and readers see the hole as a `gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from cryptopulse.bus._redis_keys import PUBLISH_LUA, Keys, as_int, keeps_latest
from cryptopulse.bus.base import BusUnavailable, Message, build_message

log = logging.getLogger(__name__)

_BATCH = 500
_MAX_BACKOFF_S = 1.0
RedisDown = (RedisError, OSError, TimeoutError)


class Outbox:
    """Numbers, queues and writes the messages this process publishes."""

    def __init__(self, redis: Redis, keys: Keys, history: int, capacity: int) -> None:
        self._redis = redis
        self._keys = keys
        self._history = history
        self.capacity = capacity
        self._queue: deque[Message] = deque()
        self._seq: dict[str, int] = {}
        self.epochs: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._sha: str | None = None
        self._prepared = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.refused = 0
        self.written = 0
        self.connected = True

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def prepare(self) -> None:
        """Load the last seq of every channel so that numbering continues where any
        earlier publisher stopped (an ingest restart keeps its channels' seqs)."""
        if self._prepared:
            return
        try:
            members: Any = await self._redis.smembers(self._keys.channels)
            names = [n.decode() for n in members]
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self._keys.meta(name), ["seq", "epoch"])
            for name, (seq, epoch) in zip(names, await pipe.execute(), strict=True):
                self._seq[name] = max(self._seq.get(name, 0), as_int(seq) or 0)
                self.epochs[name] = as_int(epoch) or 0
            self._sha = await self._redis.script_load(PUBLISH_LUA)
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        self._prepared = True
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-bus-outbox")

    async def reload(self, names: list[str]) -> None:
        """Take the seqs of `names` from Redis as they are (not the larger of ours and
        theirs): another process published these channels until now (analytics leader
        takeover), and a seq of ours that Redis refused must not leave a hole."""
        await self.prepare()
        try:
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.hget(self._keys.meta(name), "seq")
            stored = dict(zip(names, await pipe.execute(), strict=True))
        except RedisDown as exc:
            raise BusUnavailable(f"redis: {exc}") from exc
        queued = {m.channel: m.seq for m in self._queue if m.channel in stored}
        for name, seq in stored.items():
            self._seq[name] = max(as_int(seq) or 0, queued.get(name, 0))

    def put(self, channel: str, data: bytes, time_ms: int) -> Message:
        seq = self._seq.get(channel, 0) + 1
        self._seq[channel] = seq
        message = build_message(channel, seq, time_ms, data, self.epochs.get(channel, 0))
        self._queue.append(message)
        if len(self._queue) > self.capacity:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning("redis bus: outbox full; %d oldest messages dropped", self.dropped)
        self._idle.clear()
        self._wake.set()
        return message

    async def wait_room(self, timeout_s: float) -> None:
        """Backpressure: while Redis is reachable, a publisher far ahead of the writer
        waits (up to `timeout_s`) instead of overflowing the outbox with a burst. During an
        outage it never waits: the outbox keeps the newest messages."""
        if not self.connected or len(self._queue) < self.capacity // 2:
            return
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._room.wait()

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            try:
                await self._write_batch()
            except RedisDown as exc:
                if self.connected:
                    log.warning("redis bus: publishing paused (%s); %d queued", exc, self.pending)
                self.connected = False
                self._room.set()
                await asyncio.sleep(backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
                continue
            if not self.connected:
                log.warning("redis bus: publishing resumed")
            self.connected = True
            backoff = 0.05

    async def _write_batch(self) -> None:
        batch = [self._queue[i] for i in range(min(_BATCH, len(self._queue)))]
        try:
            results = await self._execute(batch)
        except NoScriptError:
            # Redis restarted and forgot the script: load it again and retry the batch.
            self._sha = await self._redis.script_load(PUBLISH_LUA)
            results = await self._execute(batch)
        # Pop what was written. It is still a prefix of the queue: `put` appends on the
        # right and drops (already written or not) on the left.
        written = {id(m) for m in batch}
        while self._queue and id(self._queue[0]) in written:
            self._queue.popleft()
        if len(self._queue) <= self.capacity // 4:
            self._room.set()
        for message, reply in zip(batch, results, strict=True):
            self._account(message.channel, reply)

    async def _execute(self, batch: list[Message]) -> list[object]:
        """One script call for the batch; the reply as one (ok, epoch) pair per message."""
        assert self._sha is not None
        now = time.time_ns() // 1_000_000
        args: list[str | bytes | int] = [self._keys.prefix, self._history, now]
        for m in batch:
            args += (m.channel, m.seq, m.time, m.data, 1 if keeps_latest(m.channel) else 0)
        reply: Any = await self._redis.evalsha(self._sha, 0, *args)
        return [reply[i : i + 2] for i in range(0, len(reply), 2)]

    def _account(self, channel: str, reply: object) -> None:
        if not isinstance(reply, list):
            self.refused += 1
            log.error("redis bus: %s refused a message: %s", channel, reply)
            return
        ok, epoch = int(reply[0]), int(reply[1])
        self.epochs[channel] = epoch
        if ok:
            self.written += 1
        else:
            self.refused += 1
            log.error("redis bus: %s has a newer seq in Redis: two publishers?", channel)

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued is written (True) or `timeout_s` passes (False)."""
        if self._task is None:
            return not self._queue
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        return not self._queue

    async def close(self, timeout_s: float) -> None:
        if self._queue and not await self.flush(timeout_s):
            log.error("redis bus: %d messages not published at shutdown", len(self._queue))
        if self._task is not None:
            self._task.cancel()
            # redis-py can take a while to unwind a cancelled call: do not wait forever.
            await asyncio.wait([self._task], timeout=1.0)
            self._task = None
