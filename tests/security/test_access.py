"""The serving-time security caches: in-process rate-limit windows, the verified-principal
cache, usage counted in memory and flushed (quota kept across flushes, nothing lost on a
graceful stop)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from authkit import done_without_io, http, make_key, make_settings, running  # noqa: E402

from cryptopulse.security.access import AuthError  # noqa: E402
from cryptopulse.security.ratelimit import LocalWindows  # noqa: E402
from cryptopulse.security.usage import month_of  # noqa: E402
from cryptopulse.store.security import SecurityStore  # noqa: E402

T = 6_000_000.0  # a minute boundary (and a second boundary), epoch seconds


def test_burst_window_slides_with_limits_weighting() -> None:
    windows = LocalWindows()
    allowed = [windows.hit_plan("k", 1000, 3, T + 0.1)[0] for _ in range(4)]
    assert allowed == [True, True, True, False]
    # Half way through the next second the previous second weighs 3 * 0.5 = 1.5:
    # floor(1.5 + current) + 1 <= 3 admits one, then floor(2.5) + 1 = 3 a second.
    later = [windows.hit_plan("k", 1000, 3, T + 1.5)[0] for _ in range(3)]
    assert later == [True, True, False]
    # Two seconds on, the old counts are gone.
    assert [windows.hit_plan("k", 1000, 3, T + 3.2)[0] for _ in range(3)] == [True] * 3
    assert windows.hit_plan("other", 1000, 3, T + 3.2)[0]  # per caller


def test_minute_window_remaining_and_reset() -> None:
    windows = LocalWindows()
    assert windows.hit_plan("k", 5, 100, T + 10) == (True, 4, pytest.approx(50.0))
    for _ in range(4):
        windows.hit_plan("k", 5, 100, T + 20)
    allowed, remaining, _ = windows.hit_plan("k", 5, 100, T + 30)
    assert (allowed, remaining) == (False, 0)
    # Next minute, 45 s in: the previous minute's 5 weigh 5 * 15/60 = 1.25; a hit is
    # allowed while floor(1.25 + current) + 1 <= 5, so four fit.
    results = [windows.hit_plan("k", 5, 100, T + 105)[:2] for _ in range(5)]
    assert results == [(True, 3), (True, 2), (True, 1), (True, 0), (False, 0)]


def test_auth_failures_and_sweep() -> None:
    windows = LocalWindows()
    for _ in range(3):
        assert windows.test("auth", 3, 60, "1.2.3.4", T)
        windows.hit("auth", 3, 60, "1.2.3.4", T)
    assert not windows.test("auth", 3, 60, "1.2.3.4", T + 1)
    assert windows.test("auth", 3, 60, "5.6.7.8", T + 1)
    windows.hit_plan("k", 5, 5, T + 2)
    assert len(windows._slots) == 3
    windows.hit_plan("late", 5, 5, T + 300)  # a sweep: windows two minutes old are gone
    assert set(k[3] for k in windows._slots) == {"late"}
    assert list(windows._pairs) == [("late", 5, 5)]  # its slot pairs are swept with them


async def test_principal_cache_follows_key_changes(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        access = app.state.services.access
        key = await make_key(app)
        first = await access.authenticate(key)
        assert await access.authenticate(key) is first  # verified once, then from the cache
        await access.db.update_key(first.key_id, None, plan="enterprise")
        changed = await access.authenticate(key)
        assert changed.plan == "enterprise"  # at once: the change went through this worker
        await access.db.update_key(first.key_id, None, revoked_at=1)
        with pytest.raises(Exception, match="revoked"):
            await access.authenticate(key)


async def test_quota_holds_across_usage_flushes(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        usage_flush_interval_s=0.05,
        plans={"q": {"rpm": 1000, "burst": 100, "monthly_quota": 3}},
    )
    async with running(settings) as app:
        key = await make_key(app, plan="q")
        async with http(app, key) as client:
            statuses = []
            for _ in range(4):
                statuses.append((await client.get("/v1/tickers")).status_code)
                await asyncio.sleep(0.15)  # a flush between requests
        assert statuses == [200, 200, 200, 429]


async def test_usage_is_written_at_a_graceful_stop(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, usage_flush_interval_s=3600)  # only the final flush
    async with running(settings) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            for _ in range(7):
                assert (await client.get("/v1/tickers/coinbase:BTC-USD")).status_code in (200, 404)
    key_id = key[9:21]
    async with running(settings) as app:
        used = await app.state.services.access.db.usage([key_id], month_of(time.time()))
    assert sum(used.values()) == 7  # per day


async def test_a_key_in_use_is_read_again_ahead_of_its_ttl(tmp_path: Path) -> None:
    ttl = 0.3
    async with running(make_settings(tmp_path, key_cache_ttl_s=ttl)) as app:
        access = app.state.services.access
        key = await make_key(app)
        first = await access.authenticate(key)
        key_id = first.key_id
        loaded = access._cache[key_id].loaded
        # Half the TTL on, a request still needs no I/O and starts a background read.
        await asyncio.sleep(ttl * 0.6)
        assert done_without_io(access.authenticate(key)) is first
        assert key_id in access._loading
        await asyncio.wait_for(asyncio.shield(access._loading[key_id]), 5)
        assert access._cache[key_id].loaded > loaded
        # Past the first read's TTL, a steady caller still never waits for the store.
        await asyncio.sleep(ttl * 0.6)
        assert done_without_io(access.authenticate(key)).key_id == key_id
        # A revocation by another worker (its own store object: no notice to this one)
        # holds here within the TTL: no entry is used past it.
        await SecurityStore(access.db._store).update_key(key_id, None, revoked_at=1)
        deadline = time.monotonic() + ttl + 0.1
        while time.monotonic() < deadline:
            try:
                await access.authenticate(key)
            except AuthError:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the revoked key was still accepted after the TTL")
