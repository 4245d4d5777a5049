"""Rate limits on Redis (`RedisWindows`): the decisions of `LocalWindows`, counters shared by
workers, one EVALSHA per request, counters that expire, outages raised as before."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cryptopulse.runtime import Services
from cryptopulse.security.plans import Plan
from cryptopulse.security.ratelimit import LocalWindows, RateLimiter, RedisWindows
from cryptopulse.settings import Settings
from scaleout.services import REDIS_URL, RedisServer

pytestmark = pytest.mark.redis

T = 6_000_000.0  # a minute boundary (and a second boundary), epoch seconds


def make_plan(rpm: int, burst: int) -> Plan:
    return Plan(f"p{rpm}-{burst}", rpm, burst, 1, 1, 1, 1, 1, 10**9)


class Pair:
    """The script windows and a `LocalWindows` oracle, hit with the same time."""

    def __init__(self, windows: RedisWindows) -> None:
        self.windows = windows
        self.local = LocalWindows()

    async def hit(self, who: str, rpm: int, burst: int, now: float) -> tuple[bool, int, float]:
        expected = self.local.hit_plan(who, rpm, burst, now)
        got = await self.windows.hit_plan(who, rpm, burst, now)
        assert got == expected, (now, got, expected)
        return got


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """Script windows on the shared Redis under a prefix of their own, deleted afterwards."""
    windows = RedisWindows(REDIS_URL, prefix=f"cptest:rl:{uuid.uuid4().hex[:10]}:")
    yield Pair(windows)
    await windows.clear()
    assert not [k async for k in windows.redis.scan_iter(match=windows.prefix + "*")]
    await windows.aclose()


async def test_burst_exhaustion_within_a_second_and_the_slide(pair: Pair) -> None:
    runs = [(await pair.hit("k", 1000, 3, T + 0.1))[0] for _ in range(4)]
    assert runs == [True, True, True, False]
    # Half way through the next second the previous 3 weigh 1.5: two more fit.
    later = [(await pair.hit("k", 1000, 3, T + 1.5))[0] for _ in range(3)]
    assert later == [True, True, False]
    assert [(await pair.hit("k", 1000, 3, T + 3.2))[0] for _ in range(3)] == [True] * 3
    assert (await pair.hit("other", 1000, 3, T + 3.2))[0]  # per caller


async def test_rpm_exhaustion_remaining_reset_and_recovery(pair: Pair) -> None:
    assert await pair.hit("k", 5, 100, T + 10) == (True, 4, pytest.approx(50.0))
    for _ in range(4):
        await pair.hit("k", 5, 100, T + 20)
    assert (await pair.hit("k", 5, 100, T + 30))[:2] == (False, 0)
    # 45 s into the next minute the previous 5 weigh 1.25: four fit.
    results = [(await pair.hit("k", 5, 100, T + 105))[:2] for _ in range(5)]
    assert results == [(True, 3), (True, 2), (True, 1), (True, 0), (False, 0)]
    # Two minutes on, nothing of it is left.
    assert await pair.hit("k", 5, 100, T + 250) == (True, 4, pytest.approx(50.0))


async def test_random_sequences_match_local_windows_exactly(pair: Pair) -> None:
    rng = random.Random(7)
    steps = [0.0, 0.001, 0.04, 0.3, 0.9, 1.7, 13.1, 59.9, 61.0, 130.0]
    for case in range(12):
        now, rpm, burst = T + rng.random() * 60, rng.randint(1, 20), rng.randint(1, 6)
        for _ in range(150):
            now += rng.choice(steps)
            await pair.hit(f"c{case}", rpm, burst, now)  # asserts equality
    allowed = [await pair.windows.hit("auth", 2, 60, "1.2.3.4", T) for _ in range(3)]
    assert allowed == [True, True, False]
    assert not await pair.windows.test("auth", 2, 60, "1.2.3.4", T + 1)
    assert await pair.windows.test("auth", 2, 60, "1.2.3.4", T + 100)  # a minute later: 2 * 1/3


async def test_two_workers_share_the_counters() -> None:
    who = f"shared-{uuid.uuid4().hex[:10]}"
    plan = make_plan(rpm=5, burst=100)
    address = f"10.9.8.7-{who}"
    a, b = RateLimiter(REDIS_URL, 3), RateLimiter(REDIS_URL, 3)
    try:
        decisions = [await (a if i % 2 else b).hit(plan, who) for i in range(7)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
        assert all(d.retry_after_s >= 1 and d.reset_s <= 60 for d in decisions[5:])
        for _ in range(3):
            assert not await b.auth_blocked(address)
            await a.auth_failed(address)
        assert await b.auth_blocked(address) and await a.auth_blocked(address)
        assert not await b.auth_blocked(address + "-other")
    finally:
        await delete_callers(who, address)
        await a.aclose()
        await b.aclose()


async def delete_callers(*names: str) -> None:
    """Delete the counters of `names` that a RateLimiter left on the shared Redis."""
    redis = Redis.from_url(REDIS_URL)
    for name in names:
        keys = [k async for k in redis.scan_iter(match=f"cp:rl:{{{name}}}:*")]
        if keys:
            await redis.delete(*keys)
    await redis.aclose()


async def test_burst_on_the_server_clock_and_keys_expire_after_two_windows() -> None:
    who = f"clock-{uuid.uuid4().hex[:10]}"
    limiter = RateLimiter(REDIS_URL, 3)
    redis = Redis.from_url(REDIS_URL)
    try:
        seconds, micros = await redis.time()
        if micros > 500_000:  # all six hits in one server second, not across a boundary
            await asyncio.sleep(1.02 - micros / 1e6)
        plan = make_plan(rpm=1000, burst=3)
        decisions = [await limiter.hit(plan, who) for _ in range(6)]
        assert [d.allowed for d in decisions] == [True] * 3 + [False] * 3
        assert [d.remaining for d in decisions] == [999, 998, 997, 997, 997, 997]
        assert all(d.retry_after_s == 1 for d in decisions)  # the burst, not the minute
        assert 0 < decisions[0].reset_s <= 60
        headers = dict(decisions[-1].headers())
        assert headers[b"retry-after"] == b"1" and headers[b"ratelimit-remaining"] == b"997"
        burst_ttl = await redis.pttl(f"cp:rl:{{{who}}}:burst:3/1")
        minute_ttl = await redis.pttl(f"cp:rl:{{{who}}}:rpm:1000/60")
        assert 0 < burst_ttl <= 2_000 and 59_000 < minute_ttl <= 120_000
    finally:
        await delete_callers(who)
        await redis.aclose()
        await limiter.aclose()


async def test_one_evalsha_per_request(own_redis: RedisServer) -> None:
    admin = Redis.from_url(own_redis.url)
    workers = [RateLimiter(f"{own_redis.url}?client_name=worker-{n}", 30) for n in (0, 1)]
    plan = make_plan(rpm=40, burst=100)
    for worker in workers:  # connect, name the connection and load the script first
        await worker.hit(plan, "warm")
    await admin.config_set("slowlog-log-slower-than", 0)
    await admin.config_set("slowlog-max-len", 10_000)
    await admin.config_resetstat()
    await admin.slowlog_reset()
    hits = 50  # over the plan's 40: denied requests cost one call too
    decisions = [await workers[i % 2].hit(plan, "k") for i in range(hits)]
    blocked = [await workers[i % 2].auth_blocked("1.2.3.4") for i in range(10)]
    log = await admin.slowlog_get(10_000)
    stats = await admin.info("commandstats")
    assert sum(d.allowed for d in decisions) == 40 and not any(blocked)
    # Commands a script runs are logged with the address "?:0"; a client's carry its own.
    sent = [
        entry["command"].split()[0].upper()
        for entry in log
        if entry["client_name"].startswith(b"worker-")
    ]
    assert sent == [b"EVALSHA"] * (hits + 10)
    assert stats["cmdstat_evalsha"]["calls"] == hits + 10
    # After SCRIPT FLUSH (or a restarted server) redis-py loads the script again.
    await admin.script_flush()
    assert (await workers[0].hit(plan, "k")).allowed is False
    assert (await admin.info("commandstats"))["cmdstat_script|load"]["calls"] == 1
    for worker in workers:
        await worker.aclose()
    await admin.aclose()


async def test_redis_down_raises_as_before_and_heals(own_redis: RedisServer) -> None:
    limiter = RateLimiter(own_redis.url, 30, timeout_s=2.0)
    plan = make_plan(rpm=10, burst=10)
    assert (await limiter.hit(plan, "k")).remaining == 9
    own_redis.stop()
    # redis' ConnectionError is a dependency outage to the API: 503 with Retry-After.
    for _ in range(2):  # the pooled connection, then a new one refused
        with pytest.raises(RedisConnectionError):
            await limiter.hit(plan, "k")
    with pytest.raises(RedisConnectionError):
        await limiter.auth_blocked("1.2.3.4")
    own_redis.start()  # no persistence: the counters and the script are gone
    assert (await limiter.hit(plan, "k")).remaining == 9
    await limiter.aclose()


async def test_other_limits_storages_keep_working() -> None:
    limiter = RateLimiter("async+memory://", 2)
    plan = make_plan(rpm=100, burst=2)
    assert [(await limiter.hit(plan, "k")).allowed for _ in range(3)] == [True, True, False]
    for _ in range(2):
        await limiter.auth_failed("1.2.3.4")
    assert await limiter.auth_blocked("1.2.3.4") and not await limiter.auth_blocked("5.6.7.8")
    await limiter.reset()
    assert (await limiter.hit(plan, "k")).remaining == 99


async def test_stopping_the_services_closes_the_rate_limit_connections(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """A worker that stops leaves no rate-limit connection open on the shared Redis."""
    admin = Redis.from_url(own_redis.url)

    async def clients() -> int:
        return int((await admin.info("clients"))["connected_clients"])

    alone = await clients()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/rl.db",
        rate_limit_storage_url=own_redis.url,
        analytics_enabled=False,
    )
    services = Services.create(settings, sources=[])
    await services.start()
    assert not await services.access.limiter.auth_blocked("1.2.3.4")
    assert await clients() > alone
    await services.stop()
    assert await clients() == alone
    await admin.aclose()
