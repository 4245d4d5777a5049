"""Per-key REST rate limits on the `limits` library: memory or Redis storage by URL.

A plan allows `rpm` requests per minute and at most `burst` in any one second, both as
sliding-window counters. With `redis://` every worker and replica shares the counters.
Failed authentications are limited per client address as well (brute-force guard).
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

__all__ = ["RateDecision", "RateLimiter", "storage_url"]


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
        reset_epoch = int(time.time()) + self.reset_s
        pairs = [
            ("ratelimit-policy", self.policy),
            ("ratelimit", f'"minute";r={self.remaining};t={self.reset_s}'),
            ("ratelimit-limit", str(self.limit)),
            ("ratelimit-remaining", str(self.remaining)),
            ("ratelimit-reset", str(self.reset_s)),
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(reset_epoch)),
        ]
        if not self.allowed:
            pairs.append(("retry-after", str(max(1, self.retry_after_s))))
        return [(k.encode(), v.encode()) for k, v in pairs]


class RateLimiter:
    def __init__(self, url: str, auth_failures_per_minute: int, timeout_s: float = 5.0) -> None:
        uri, options = storage_url(url, timeout_s)
        storage = storage_from_string(uri, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._auth_failures = RateLimitItemPerMinute(max(1, auth_failures_per_minute))
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

    async def auth_blocked(self, address: str) -> bool:
        return not await self._strategy.test(self._auth_failures, address, "auth")

    async def auth_failed(self, address: str) -> None:
        await self._strategy.hit(self._auth_failures, address, "auth")

    async def reset(self) -> None:
        await self.storage.reset()
