"""What only the Redis bus does: seqs shared by replicas and kept across publisher
restarts, epochs when Redis loses history, outages reported and recovered from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from bus.test_backends import Collector, delete_prefix, publish_n
from cryptopulse.bus import BusListener, BusUnavailable, Gap, Message
from cryptopulse.bus.redis import RedisBus
from scaleout.services import REDIS_URL, RedisServer, until

pytestmark = pytest.mark.redis


class Listener(Collector):
    """A subscriber that also records resyncs and outages, like a stream connection."""

    def __init__(self) -> None:
        super().__init__()
        self.resyncs: list[tuple[Gap | None, int | None, bool]] = []
        self.outages = 0

    def on_resync(self, channel: str, gap: Gap | None, snapshot: Message | None, reset: bool):
        self.resyncs.append((gap, snapshot.seq if snapshot else None, reset))
        if snapshot is not None:
            self.messages.append(snapshot)

    def on_unavailable(self, channel: str) -> None:
        self.outages += 1


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"cptest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


def test_listener_matches_the_protocol() -> None:
    assert isinstance(Listener(), BusListener)
    assert not isinstance(Collector(), BusListener)


async def test_replicas_serve_the_same_seqs_and_payloads(prefix: str) -> None:
    ingest = RedisBus(REDIS_URL, prefix=prefix)
    replicas = [RedisBus(REDIS_URL, prefix=prefix) for _ in range(2)]
    seen = [Collector(), Collector()]
    try:
        for replica, collector in zip(replicas, seen, strict=True):
            await replica.start()
            await replica.subscribe("trades:x:BTC-USD", collector)
        await publish_n(ingest, "trades:x:BTC-USD", 30)
        await until(lambda: all(len(c.messages) == 30 for c in seen))
        assert [m.frame for m in seen[0].messages] == [m.frame for m in seen[1].messages]
        assert seen[0].seqs() == list(range(1, 31))
        # one follow (one XREAD stream) per channel per process, however many subscribers
        await replicas[0].subscribe("trades:x:BTC-USD", Collector())
        assert list(replicas[0].reader.follows) == ["trades:x:BTC-USD"]
    finally:
        for bus in (ingest, *replicas):
            await bus.close()


async def test_a_restarted_publisher_continues_the_seqs(prefix: str) -> None:
    first = RedisBus(REDIS_URL, prefix=prefix)
    await publish_n(first, "a", 5)
    await first.close()  # flushes the outbox
    second = RedisBus(REDIS_URL, prefix=prefix)
    try:
        message = await second.publish("a", b"{}", 2000)
        assert message.seq == 6
        await second.flush()
        resumed = await second.subscribe("a", Collector(), resume_after=3)
        assert [m.seq for m in resumed.replay] == [4, 5, 6]
    finally:
        await second.close()


async def test_the_latest_state_cache_holds_the_newest_ticker(prefix: str) -> None:
    bus = RedisBus(REDIS_URL, prefix=prefix)
    try:
        for last in (1.0, 2.0):
            await bus.publish("ticker:x:BTC-USD", orjson.dumps({"last": last}), 1)
        await bus.publish("trades:x:BTC-USD", b"{}", 1)
        await bus.flush()
        state = await bus.latest_state()
        assert list(state) == ["ticker:x:BTC-USD"]
        assert orjson.loads(state["ticker:x:BTC-USD"]) == {"last": 2.0}
        await bus.put_state("sources", {"x:BTC-USD": b"live"})
        assert await bus.get_state("sources") == {"x:BTC-USD": b"live"}
    finally:
        await bus.close()


async def test_history_lost_with_the_publisher_running_continues_seqs(prefix: str) -> None:
    ingest, api = RedisBus(REDIS_URL, prefix=prefix), RedisBus(REDIS_URL, prefix=prefix)
    listener = Listener()
    try:
        await api.subscribe("a", listener)
        await publish_n(ingest, "a", 3)
        await until(lambda: listener.seqs() == [1, 2, 3])
        epoch = listener.messages[-1].epoch
        await delete_prefix(REDIS_URL, prefix)  # "FLUSHALL" for this test's keys
        await publish_n(ingest, "a", 3)
        await until(lambda: listener.seqs()[-1:] == [6])
        assert listener.seqs() == [1, 2, 3, 4, 5, 6]  # the outbox kept every message
        latest = await api.latest("a")
        assert latest is not None and latest.epoch != epoch
    finally:
        await ingest.close()
        await api.close()


async def test_history_lost_with_the_publisher_is_a_reset_and_a_snapshot(prefix: str) -> None:
    ingest, api = RedisBus(REDIS_URL, prefix=prefix), RedisBus(REDIS_URL, prefix=prefix)
    listener = Listener()
    try:
        await api.subscribe("a", listener)
        await publish_n(ingest, "a", 5)
        await until(lambda: listener.seqs() == [1, 2, 3, 4, 5])
        await ingest.close()
        await delete_prefix(REDIS_URL, prefix)
        ingest = RedisBus(REDIS_URL, prefix=prefix)  # numbering restarts at 1
        await publish_n(ingest, "a", 2)
        await until(lambda: bool(listener.resyncs), timeout=10)
        gap, snapshot, reset = listener.resyncs[0]
        assert reset and snapshot == 2 and gap is not None
        await publish_n(ingest, "a", 1)
        await until(lambda: listener.seqs()[-1:] == [3])
    finally:
        await ingest.close()
        await api.close()


async def test_an_outage_is_reported_and_recovered_from(own_redis: RedisServer) -> None:
    ingest, api = RedisBus(own_redis.url), RedisBus(own_redis.url)
    listener = Listener()
    try:
        await api.subscribe("a", listener)
        await publish_n(ingest, "a", 2)
        await until(lambda: listener.seqs() == [1, 2])
        own_redis.stop()
        await until(lambda: listener.outages == 1, timeout=5)
        with pytest.raises(BusUnavailable):
            await api.subscribe("b", Collector())
        with pytest.raises(BusUnavailable):
            await api.ping()
        await publish_n(ingest, "a", 3)  # queued in the outbox meanwhile
        assert ingest.outbox.pending == 3
        own_redis.start()  # empty: a new epoch, and the outbox refills it
        await until(lambda: listener.seqs()[-1:] == [5], timeout=10)
        assert listener.seqs() == [1, 2, 3, 4, 5]
        assert await api.ping()
    finally:
        await ingest.close()
        await api.close()


async def test_outbox_overflow_is_a_gap_for_readers(own_redis: RedisServer) -> None:
    ingest = RedisBus(own_redis.url, outbox=2)
    api = RedisBus(own_redis.url)
    listener = Listener()
    try:
        await api.subscribe("a", listener)
        await publish_n(ingest, "a", 1)
        await until(lambda: listener.seqs() == [1])
        own_redis.stop()
        await publish_n(ingest, "a", 5)  # seqs 2..6; only 5 and 6 survive
        assert ingest.outbox.dropped == 3
        own_redis.start()
        await until(lambda: listener.seqs()[-1:] == [6], timeout=10)
        gaps = [gap for gap, _, _ in listener.resyncs if gap is not None]
        assert gaps and gaps[0].from_seq == 2 and gaps[0].to_seq <= 4
    finally:
        await ingest.close()
        await api.close()
