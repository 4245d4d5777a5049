"""Analytics in scale-out, on the real PostgreSQL and Redis: two API workers follow one
ingest's closed candles and compute the same signals and grades; only the elected leader
publishes; when the leader dies its lock lapses, the other takes over within the TTL and
publishing continues with gap-free seqs and one `grades` message per recomputation."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import orjson
import pytest
from redis.asyncio import Redis

from bus.test_backends import delete_prefix
from cryptopulse.analytics._leader import AnalyticsLeader, LeaderBus
from cryptopulse.api import create_app
from cryptopulse.api.schemas import Readiness
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain.models import Trade
from cryptopulse.processes import api_services, create_ingest_app
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from scaleout.services import REDIS_URL, until
from scaleout.test_replica import running

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
MINUTE = 60_000
VENUES = ("coinbase:BTC-USD", "coinbase:ETH-USD")
TTL_S = 1.0


def make_settings(database_url: str, prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        bus_url=REDIS_URL,
        redis_prefix=prefix,
        source="sim",
        analytics_interval="1m",
        analytics_debounce_s=0.5,  # first closes warm series from the store first
        analytics_leader_ttl_s=TTL_S,
        ml_enabled=False,
        bootstrap_key=False,
    )


def ingest_only(settings: Settings) -> Services:
    quiet = settings.model_copy(update={"analytics_enabled": False})
    services = Services.create(quiet, sources=[])
    services.role = "ingest"
    return services


def price(venue: str, minute: int) -> float:
    base = 30_000.0 if "BTC" in venue else 2_000.0
    return base * (1 + 0.01 * math.sin(minute / 3) + 0.002 * minute)


async def feed_minute(ingest: Services, minute: int) -> None:
    """One trade per venue in `minute`: closes every candle of the minute before."""
    for n, venue in enumerate(VENUES):
        at = T0 + minute * MINUTE + n
        trade = Trade(venue, f"{minute}-{n}", price(venue, minute), 0.1, "buy", at, at)
        await ingest.pipeline.on_trade(trade)
    assert isinstance(ingest.bus, RedisBus)
    assert await ingest.bus.flush(5.0)


async def stream(prefix: str, channel: str) -> list[tuple[int, dict[str, object]]]:
    redis = Redis.from_url(REDIS_URL)
    try:
        entries = await redis.xrange(f"{prefix}s:{channel}", "-", "+")
    finally:
        await redis.aclose()
    return [(int(i.decode().split("-")[0]), orjson.loads(f[b"d"])) for i, f in entries]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"cptest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


def leader_of(services: Services) -> AnalyticsLeader:
    leader = services.analytics_leader
    assert isinstance(leader, AnalyticsLeader)
    return leader


async def test_api_workers_share_analytics_and_hand_over_publishing(
    postgres_url: str, prefix: str
) -> None:
    settings = make_settings(postgres_url, prefix)
    ingest_app = create_ingest_app(settings, ingest_only)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(ingest_app))
        ingest: Services = ingest_app.state.services
        await feed_minute(ingest, 0)  # the candle channels exist before the workers look
        apps = [create_app(settings, api_services) for _ in range(2)]
        clients = [await stack.enter_async_context(running(app)) for app in apps]
        workers: list[Services] = [app.state.services for app in apps]
        await until(lambda: all(s.analytics_leader is not None for s in workers))
        await until(lambda: sum(leader_of(s).leading for s in workers) == 1, timeout=5)
        channel = f"candles:{VENUES[0]}:1m"
        for s in workers:
            assert isinstance(s.bus, RedisBus)
            await until(lambda s=s: channel in s.bus.reader.follows)

        async def minute(m: int) -> None:
            await feed_minute(ingest, m)
            closed = T0 + (m - 1) * MINUTE
            await until(lambda: all(s.analytics.state.as_of == closed for s in workers))  # type: ignore[union-attr]

        for m in range(1, 8):
            await minute(m)
        a, b = (s.analytics for s in workers)
        assert a is not None and b is not None
        for venue in (*VENUES, "BTC-USD"):
            assert a.signals[(venue, "1m")].signal == b.signals[(venue, "1m")].signal
            assert a.signals[(venue, "1m")].values == b.signals[(venue, "1m")].values
        assert a.state.grades == b.state.grades and a.state.sectors.keys() == b.state.sectors.keys()

        first, second = sorted(workers, key=lambda s: not leader_of(s).leading)
        assert isinstance(second.analytics.bus, LeaderBus)  # type: ignore[union-attr]
        assert second.analytics.bus.suppressed > 0  # type: ignore[union-attr]
        signals = await stream(prefix, f"signals:{VENUES[0]}")
        # One publisher: every close once (1m, and the 5m and 15m ones), gap-free seqs.
        assert [seq for seq, _ in signals] == list(range(1, len(signals) + 1))
        closes = [(body["interval"], body["time"]) for _, body in signals]
        assert len(closes) == len(set(closes))
        assert [body["time"] for _, body in signals if body["interval"] == "1m"] == [
            T0 + m * MINUTE for m in range(7)
        ]

        # The leader dies without releasing the lock: it lapses and the other takes over.
        old = leader_of(first)
        assert old._task is not None
        old._task.cancel()
        old._lease_until = 0.0
        died = time.monotonic()
        await until(lambda: leader_of(second).leading, timeout=3 * TTL_S)
        assert time.monotonic() - died <= TTL_S + TTL_S / 3 + 0.5
        for m in range(8, 11):
            await minute(m)

        signals = await stream(prefix, f"signals:{VENUES[0]}")
        assert [seq for seq, _ in signals] == list(range(1, len(signals) + 1))
        assert [body["time"] for _, body in signals if body["interval"] == "1m"][-3:] == [
            T0 + m * MINUTE for m in (7, 8, 9)
        ]
        grades = [body for _, body in await stream(prefix, "grades") if body["event"] == "grades"]
        times = [body["time"] for body in grades]
        assert times == sorted(set(times))  # one `grades` message per recomputation
        assert T0 + 9 * MINUTE in times and T0 + 6 * MINUTE in times
        for s in workers:
            assert isinstance(s.bus, RedisBus)
            assert s.bus.outbox.refused == 0
        # /readyz as declared in the OpenAPI document (api/schemas.py)
        ready = Readiness.model_validate((await clients[0].get("/readyz")).json())
        assert ready.role == "api" and ready.dependencies.bus.backend == "RedisBus"
