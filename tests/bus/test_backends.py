"""The bus suite, run over every backend: memory and Redis (the real server).

Per-channel seq, shared frames, resume, gap, reset history and fan-out behave the same on
both; Redis delivers asynchronously, so tests wait for deliveries with a deadline.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from redis.asyncio import Redis

from cryptopulse.bus import Bus, MemoryBus, Message
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain._untracked import assert_untrackable
from scaleout.services import REDIS_URL, until

BusFactory = Callable[[int], Bus]


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def seqs(self) -> list[int]:
        return [m.seq for m in self.messages]


async def publish_n(bus: Bus, channel: str, n: int) -> None:
    for i in range(n):
        await bus.publish(channel, orjson.dumps({"i": i}), 1000 + i)


async def settle(bus: Bus) -> None:
    """Wait until what was published can be read back (Redis writes in the background)."""
    if isinstance(bus, RedisBus):
        assert await bus.flush(10.0)


async def delete_prefix(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """A factory of started buses of one backend; Redis ones share a fresh key prefix."""
    prefix = f"cptest:{uuid.uuid4().hex[:10]}:"
    made: list[Bus] = []

    def make(history: int = 1000) -> Bus:
        bus: Bus
        if request.param == "memory":
            bus = MemoryBus(history)
        else:
            bus = RedisBus(REDIS_URL, history, prefix=prefix)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()
    if request.param == "redis":
        await delete_prefix(REDIS_URL, prefix)


async def started(make_bus: BusFactory, history: int = 1000) -> Bus:
    bus = make_bus(history)
    await bus.start()
    return bus


async def test_seq_is_per_channel_and_gap_free(make_bus: BusFactory) -> None:
    bus = await started(make_bus, 5)
    await publish_n(bus, "a", 3)
    await publish_n(bus, "b", 2)
    await settle(bus)
    assert (await bus.latest("a")).seq == 3  # type: ignore[union-attr]
    assert (await bus.latest("b")).seq == 2  # type: ignore[union-attr]
    assert bus.channels() == ["a", "b"]
    assert await bus.ping()


async def test_frames_are_serialized_once_and_shared(make_bus: BusFactory) -> None:
    bus = await started(make_bus)
    first, second = Collector(), Collector()
    await bus.subscribe("a", first)
    await bus.subscribe("a", second)
    await publish_n(bus, "a", 1)
    await until(lambda: len(first.messages) == 1 and len(second.messages) == 1)
    assert first.messages[0].frame is second.messages[0].frame
    frame = orjson.loads(first.messages[0].frame)
    assert frame == {"type": "data", "channel": "a", "seq": 1, "time": 1000, "data": {"i": 0}}
    snapshot = orjson.loads(first.messages[0].snapshot_frame())
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 1


async def test_live_messages_arrive_in_order_after_the_snapshot(make_bus: BusFactory) -> None:
    bus = await started(make_bus)
    await publish_n(bus, "a", 3)
    await settle(bus)
    collector = Collector()
    sub = await bus.subscribe("a", collector)
    assert sub.snapshot is not None and sub.snapshot.seq == 3
    await publish_n(bus, "a", 50)
    await until(lambda: collector.seqs()[-1:] == [53])
    assert collector.seqs() == list(range(4, 54))


async def test_resume_replays_exactly_what_was_missed(make_bus: BusFactory) -> None:
    bus = await started(make_bus, 10)
    await publish_n(bus, "a", 8)
    await settle(bus)
    sub = await bus.subscribe("a", Collector(), resume_after=5)
    assert [m.seq for m in sub.replay] == [6, 7, 8]
    assert [orjson.loads(m.data)["i"] for m in sub.replay] == [5, 6, 7]
    assert sub.gap is None and sub.snapshot is None
    caught_up = await bus.subscribe("a", Collector(), resume_after=8)
    assert caught_up.replay == [] and caught_up.gap is None


async def test_resume_from_too_old_a_seq_is_a_gap_and_a_snapshot(make_bus: BusFactory) -> None:
    # Redis trims `MAXLEN ~` by whole stream nodes (100 entries): publish well past that.
    bus = await started(make_bus, 3)
    await publish_n(bus, "a", 250)
    await settle(bus)
    sub = await bus.subscribe("a", Collector(), resume_after=4)
    assert sub.replay == [] and sub.gap is not None
    assert sub.gap.from_seq == 5 and sub.gap.to_seq < 250
    assert sub.snapshot is not None and sub.snapshot.seq == 250
    # the oldest message still held is replayable without a gap
    edge = await bus.subscribe("a", Collector(), resume_after=sub.gap.to_seq)
    assert [m.seq for m in edge.replay] == list(range(sub.gap.to_seq + 1, 251))
    assert edge.gap is None


async def test_a_seq_from_the_future_means_history_was_reset(make_bus: BusFactory) -> None:
    bus = await started(make_bus, 3)
    await publish_n(bus, "a", 2)
    await settle(bus)
    sub = await bus.subscribe("a", Collector(), resume_after=500)
    assert sub.gap is not None and sub.snapshot is not None and sub.snapshot.seq == 2


async def test_unsubscribe_stops_delivery(make_bus: BusFactory) -> None:
    bus = await started(make_bus)
    collector, witness = Collector(), Collector()
    await bus.subscribe("a", collector)
    await bus.subscribe("a", witness)
    await publish_n(bus, "a", 2)
    await until(lambda: collector.seqs() == [1, 2])
    await bus.unsubscribe("a", collector)
    await publish_n(bus, "a", 2)
    await until(lambda: witness.seqs() == [1, 2, 3, 4])
    assert collector.seqs() == [1, 2]


async def test_a_channel_nobody_published_is_quiet_until_data_arrives(
    make_bus: BusFactory,
) -> None:
    bus = await started(make_bus)
    collector = Collector()
    sub = await bus.subscribe("quiet", collector)
    assert sub == type(sub)([], None, None)
    assert await bus.latest("quiet") is None
    await publish_n(bus, "quiet", 1)
    await until(lambda: collector.seqs() == [1])


async def test_memory_history_is_bounded_and_out_of_the_collectors_sight() -> None:
    """A full collection walks every tracked container's items: the history (10^5–10^7
    messages in a busy process) must be in none of them."""
    bus = MemoryBus(history=50)
    for i in range(120):
        bus.publish_nowait("a", orjson.dumps({"i": i, "s": "x" * (i % 7)}), 1_000 + i)
    gc.collect()
    state = bus._channels["a"]
    assert len(state.history) == 50
    assert not gc.is_tracked(state.history)
    assert not any(gc.is_tracked(frame) for frame in state.history.values())
    # Nor the channel (~15 per instrument), followed or not: its subscribers are the bus's.
    collector = Collector()
    await bus.subscribe("b", collector)
    bus.publish_nowait("b", b"{}", 2_000)
    assert collector.seqs() == [1]
    await bus.unsubscribe("b", collector)
    assert bus._subscribers == {}
    for name in ("a", "b"):
        channel = bus._channels[name]
        assert not gc.is_tracked(channel) and not gc.is_tracked(channel.history)
        # What makes untracking it safe: it holds atoms and a dict of them only.
        assert_untrackable(channel, (type(channel),))
    sub = await bus.subscribe("a", Collector(), resume_after=70)
    assert [(m.seq, m.time, orjson.loads(m.data)["i"]) for m in sub.replay] == [
        (seq, 999 + seq, seq - 1) for seq in range(71, 121)
    ]
    old = await bus.subscribe("a", Collector(), resume_after=69)
    assert old.gap is not None and (old.gap.from_seq, old.gap.to_seq) == (70, 70)
