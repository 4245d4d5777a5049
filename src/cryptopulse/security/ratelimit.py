"""Per-key REST rate limits: in process (`memory://`) or on Redis through `limits`.

A plan allows `rpm` requests per minute and at most `burst` in any one second, both as
sliding-window counters. With `redis://` every worker and replica shares the counters.
Failed authentications are limited per client address as well (brute-force guard).

In one process the counters are `LocalWindows`: the same sliding-window-counter
arithmetic as `limits`' memory storage, as plain synchronous dict updates. The `limits`
memory storage costs ~18 µs per request (an async lock per key, string keys, two windows
read per hit), as much as a whole bare route on the same server (docs/benchmarks.md);
these cost ~1 µs. Between awaits nothing interleaves, so a hit is exact under concurrency.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import BlockingConnectionPool

from cryptopulse.security.plans import Plan

__all__ = ["LocalWindows", "RateDecision", "RateLimiter", "storage_url"]

_MINUTE = 60
_SECOND = 1


def storage_url(url: str, timeout_s: float = 5.0) -> tuple[str, dict[str, Any]]:
    """The `limits` async storage URI (and options) for a settings URL."""
    if url.startswith(("redis://", "rediss://")):
        # A bounded pool that waits for a free connection (a burst of requests must not
        # fail with "too many connections"), with a timeout on every Redis call.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=timeout_s, socket_timeout=timeout_s
        )
        return "async+" + url, {"implementation": "redispy", "connection_pool": pool}
    if url.startswith("memory://"):
        return "async+memory://", {}
    return url, {}


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the minute window has room again
    retry_after_s: int
    policy: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        """IETF draft `RateLimit-Policy` / `RateLimit`, the older `RateLimit-*` trio and the
        de-facto `X-RateLimit-*` (reset as epoch seconds, as GitHub does)."""
        remaining = str(self.remaining).encode()
        reset = str(self.reset_s).encode()
        limit = str(self.limit).encode()
        pairs = [
            (b"ratelimit-policy", self.policy.encode()),
            (b"ratelimit", b'"minute";r=%b;t=%b' % (remaining, reset)),
            (b"ratelimit-limit", limit),
            (b"ratelimit-remaining", remaining),
            (b"ratelimit-reset", reset),
            (b"x-ratelimit-limit", limit),
            (b"x-ratelimit-remaining", remaining),
            (b"x-ratelimit-reset", str(int(time.time()) + self.reset_s).encode()),
        ]
        if not self.allowed:
            pairs.append((b"retry-after", str(max(1, self.retry_after_s)).encode()))
        return pairs


class LocalWindows:
    """Sliding-window counters of one process, with `limits`' arithmetic.

    Windows are aligned to the epoch (window `int(now / expiry)`); a request is allowed
    when `floor(previous * previous_ttl / expiry + current) + 1 <= limit`, where
    `previous_ttl` is what is left of the current window. Counters of windows older than
    the previous one are dropped by a sweep at most once a minute.
    """

    __slots__ = ("_next_sweep", "_slots")

    def __init__(self) -> None:
        # (namespace, limit, expiry, who) -> [window index, count in it, count in the one before]
        self._slots: dict[tuple[str, int, int, str], list[int]] = {}
        self._next_sweep = 0.0

    def _window(self, key: tuple[str, int, int, str], expiry: int, now: float) -> list[int]:
        index = int(now / expiry)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = [index, 0, 0]
        elif slot[0] != index:
            slot[2] = slot[1] if slot[0] == index - 1 else 0
            slot[0], slot[1] = index, 0
        return slot

    def _weighted(self, slot: list[int], expiry: int, now: float) -> float:
        previous = slot[2]
        if not previous:
            return float(slot[1])
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry
        return previous * previous_ttl / expiry + slot[1]

    def hit(self, namespace: str, limit: int, expiry: int, who: str, now: float) -> bool:
        """Count one hit if the window has room; False (nothing counted) otherwise."""
        if now >= self._next_sweep:
            self._sweep(now)
        slot = self._window((namespace, limit, expiry, who), expiry, now)
        if math.floor(self._weighted(slot, expiry, now)) + 1 > limit:
            return False
        slot[1] += 1
        return True

    def test(self, namespace: str, limit: int, expiry: int, who: str, now: float) -> bool:
        """Whether one more hit would be allowed (counts nothing)."""
        slot = self._slots.get((namespace, limit, expiry, who))
        if slot is None:
            return True
        return (
            self._weighted(self._window((namespace, limit, expiry, who), expiry, now), expiry, now)
            < limit
        )

    def hit_plan(self, who: str, rpm: int, burst: int, now: float) -> tuple[bool, int, float]:
        """One request against a plan: `hit` of the one-second `burst` window and, if that
        allowed it, of the one-minute `rpm` window; then the minute window's `stats`.
        (allowed, remaining, seconds to reset), in one pass over one slot pair."""
        if now >= self._next_sweep:
            self._sweep(now)
        second = self._window(("burst", burst, _SECOND, who), _SECOND, now)
        allowed = math.floor(self._weighted(second, _SECOND, now)) + 1 <= burst
        minute = self._window(("rpm", rpm, _MINUTE, who), _MINUTE, now)
        weighted = self._weighted(minute, _MINUTE, now)
        if allowed:
            second[1] += 1
            allowed = math.floor(weighted) + 1 <= rpm
            if allowed:
                minute[1] += 1
                weighted += 1
        previous, current = minute[2], minute[1]
        remaining = max(0, rpm - math.floor(weighted))
        if not (previous or current):
            return allowed, remaining, 0.0
        reset = math.inf
        if previous:
            previous_ttl = (1 - (((now - _MINUTE) / _MINUTE) % 1)) * _MINUTE
            reset = previous_ttl % (_MINUTE / previous)
        if current:
            reset = min(reset, ((1 - ((now / _MINUTE) % 1)) * _MINUTE + _MINUTE) % _MINUTE)
        return allowed, remaining, reset

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + 60
        stale = [k for k, slot in self._slots.items() if slot[0] < int(now / k[2]) - 1]
        for key in stale:
            del self._slots[key]

    def clear(self) -> None:
        self._slots.clear()


class RateLimiter:
    def __init__(self, url: str, auth_failures_per_minute: int, timeout_s: float = 5.0) -> None:
        self._auth_limit = max(1, auth_failures_per_minute)
        self._local: LocalWindows | None = None
        if url.startswith("memory://"):
            self._local = LocalWindows()
        uri, options = storage_url(url, timeout_s)
        storage = storage_from_string(uri, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._auth_failures = RateLimitItemPerMinute(self._auth_limit)
        self._items: dict[str, tuple[RateLimitItemPerMinute, RateLimitItemPerSecond, str]] = {}

    def _plan_items(self, plan: Plan) -> tuple[RateLimitItemPerMinute, RateLimitItemPerSecond, str]:
        items = self._items.get(plan.name)
        if items is None:
            minute = RateLimitItemPerMinute(plan.rpm, namespace="rpm")
            second = RateLimitItemPerSecond(plan.burst, namespace="burst")
            policy = f'"minute";q={plan.rpm};w=60, "burst";q={plan.burst};w=1'
            items = self._items[plan.name] = (minute, second, policy)
        return items

    async def hit(self, plan: Plan, who: str) -> RateDecision:
        """Count one request of `who` (a principal's limit id) against its plan."""
        minute, second, policy = self._plan_items(plan)
        if self._local is not None:
            return self._hit_local(plan, who, policy)
        strategy = self._strategy
        allowed = await strategy.hit(second, who)
        retry = 1
        if allowed:
            allowed = await strategy.hit(minute, who)
        stats = await strategy.get_window_stats(minute, who)
        reset_s = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed and stats.remaining <= 0:
            retry = max(1, reset_s)
        return RateDecision(allowed, plan.rpm, stats.remaining, reset_s, retry, policy)

    def _hit_local(self, plan: Plan, who: str, policy: str) -> RateDecision:
        local = self._local
        assert local is not None
        allowed, remaining, reset_in = local.hit_plan(who, plan.rpm, plan.burst, time.time())
        reset_s = max(0, math.ceil(reset_in))
        retry = max(1, reset_s) if not allowed and remaining <= 0 else 1
        return RateDecision(allowed, plan.rpm, remaining, reset_s, retry, policy)

    async def auth_blocked(self, address: str) -> bool:
        if self._local is not None:
            return not self._local.test("auth", self._auth_limit, _MINUTE, address, time.time())
        return not await self._strategy.test(self._auth_failures, address, "auth")

    async def auth_failed(self, address: str) -> None:
        if self._local is not None:
            self._local.hit("auth", self._auth_limit, _MINUTE, address, time.time())
            return
        await self._strategy.hit(self._auth_failures, address, "auth")

    async def reset(self) -> None:
        if self._local is not None:
            self._local.clear()
        await self.storage.reset()
