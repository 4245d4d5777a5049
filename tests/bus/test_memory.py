"""The in-process bus: per-channel seq, ring-buffer history, resume, gap, fan-out."""

from __future__ import annotations

import orjson

from cryptopulse.bus import MemoryBus, Message


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)


async def publish_n(bus: MemoryBus, channel: str, n: int) -> None:
    for i in range(n):
        await bus.publish(channel, orjson.dumps({"i": i}), 1000 + i)


async def test_seq_is_per_channel_and_gap_free() -> None:
    bus = MemoryBus(history=5)
    await publish_n(bus, "a", 3)
    await publish_n(bus, "b", 2)
    assert (await bus.latest("a")).seq == 3  # type: ignore[union-attr]
    assert (await bus.latest("b")).seq == 2  # type: ignore[union-attr]
    assert bus.channels() == ["a", "b"]


async def test_frames_are_serialized_once_and_shared() -> None:
    bus = MemoryBus()
    first, second = Collector(), Collector()
    await bus.subscribe("a", first)
    await bus.subscribe("a", second)
    await publish_n(bus, "a", 1)
    assert first.messages[0].frame is second.messages[0].frame
    frame = orjson.loads(first.messages[0].frame)
    assert frame == {"type": "data", "channel": "a", "seq": 1, "time": 1000, "data": {"i": 0}}
    snapshot = orjson.loads(first.messages[0].snapshot_frame())
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 1


async def test_resume_replays_exactly_what_was_missed() -> None:
    bus = MemoryBus(history=10)
    await publish_n(bus, "a", 8)
    sub = await bus.subscribe("a", Collector(), resume_after=5)
    assert [m.seq for m in sub.replay] == [6, 7, 8]
    assert sub.gap is None and sub.snapshot is None
    caught_up = await bus.subscribe("a", Collector(), resume_after=8)
    assert caught_up.replay == [] and caught_up.gap is None


async def test_resume_from_too_old_a_seq_is_a_gap_and_a_snapshot() -> None:
    bus = MemoryBus(history=3)
    await publish_n(bus, "a", 10)  # history holds 8, 9, 10
    sub = await bus.subscribe("a", Collector(), resume_after=4)
    assert sub.replay == []
    assert (sub.gap.from_seq, sub.gap.to_seq) == (5, 7)  # type: ignore[union-attr]
    assert sub.snapshot is not None and sub.snapshot.seq == 10
    # the oldest message still held is replayable without a gap
    edge = await bus.subscribe("a", Collector(), resume_after=7)
    assert [m.seq for m in edge.replay] == [8, 9, 10] and edge.gap is None


async def test_a_seq_from_the_future_means_history_was_reset() -> None:
    bus = MemoryBus(history=3)
    await publish_n(bus, "a", 2)
    sub = await bus.subscribe("a", Collector(), resume_after=500)
    assert sub.gap is not None and sub.snapshot is not None and sub.snapshot.seq == 2


async def test_unsubscribe_stops_delivery() -> None:
    bus = MemoryBus()
    collector = Collector()
    await bus.subscribe("a", collector)
    await publish_n(bus, "a", 2)
    await bus.unsubscribe("a", collector)
    await publish_n(bus, "a", 2)
    assert [m.seq for m in collector.messages] == [1, 2]
