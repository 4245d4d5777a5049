"""Per-key REST rate limits: in process (`memory://`) or on Redis (`redis://`).

A plan allows `rpm` requests per minute and at most `burst` in any one second, both as
sliding-window counters. With `redis://` every worker and replica shares the counters.
Failed authentications are limited per client address as well (brute-force guard).

In one process the counters are `LocalWindows`: the same sliding-window-counter
arithmetic as `limits`' memory storage, as plain synchronous dict updates. The `limits`
memory storage costs ~18 µs per request (an async lock per key, string keys, two windows
read per hit), as much as a whole bare route on the same server (docs/benchmarks.md);
these cost ~1 µs. Between awaits nothing interleaves, so a hit is exact under concurrency.

On Redis the counters are `RedisWindows`: the same arithmetic in one Lua script, so a
request is one round trip (EVALSHA) on Redis' clock, atomic across every worker, where
`limits` took three (docs/decisions.md). Any other URL is a `limits` async storage URI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import BlockingConnectionPool, Redis

from cryptopulse.security.plans import Plan

__all__ = [
    "HEADER_FAMILIES",
    "LimitsWindows",
    "LocalWindows",
    "RateDecision",
    "RateLimiter",
    "RedisWindows",
    "redis_pool",
    "storage_url",
]

_MINUTE = 60
_SECOND = 1


def redis_pool(url: str, timeout_s: float = 5.0) -> BlockingConnectionPool:
    """A bounded pool that waits for a free connection (a burst of requests must not fail
    with "too many connections"), with a timeout on every Redis call."""
    return BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=timeout_s, socket_timeout=timeout_s
    )


def storage_url(url: str, timeout_s: float = 5.0) -> tuple[str, dict[str, Any]]:
    """The `limits` async storage URI (and options) for a settings URL."""
    if url.startswith(("redis://", "rediss://")):
        pool = redis_pool(url, timeout_s)
        return "async+" + url, {"implementation": "redispy", "connection_pool": pool}
    if url.startswith("memory://"):
        return "async+memory://", {}
    return url, {}


# Rate-limit header families (`Settings.rate_limit_headers`).
HEADER_FAMILIES: tuple[str, ...] = ("ietf", "draft", "x")


class RateDecision(msgspec.Struct, frozen=True, gc=False):
    """One request's outcome against its plan (a frozen `msgspec.Struct`: one per request,
    built in a tenth of a frozen dataclass's time, and never tracked by the collector)."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the minute window has room again
    retry_after_s: int
    policy: str
    families: tuple[str, ...] = HEADER_FAMILIES

    def headers(self) -> list[tuple[bytes, bytes]]:
        """IETF draft `RateLimit-Policy` / `RateLimit` (`ietf`), the older `RateLimit-*` trio
        (`draft`) and the de-facto `X-RateLimit-*` (`x`, reset as epoch seconds, as GitHub
        does), those of `families`; `Retry-After` when refused."""
        pairs = []
        for line in self.header_lines().split(b"\r\n")[:-1]:
            name, _, value = line.partition(b": ")
            pairs.append((name, value))
        return pairs

    def header_lines(self) -> bytes:
        """`headers()` as HTTP/1.1 header lines, each ending in CRLF: what the hottest
        answers write to the socket as they are (api/_hot.py), without a list of pairs."""
        families = self.families
        remaining, reset = self.remaining, self.reset_s
        lines = b""
        if "ietf" in families:
            lines = b'ratelimit-policy: %b\r\nratelimit: "minute";r=%d;t=%d\r\n' % (
                self.policy.encode(),
                remaining,
                reset,
            )
        if "draft" in families:
            lines += (
                b"ratelimit-limit: %d\r\nratelimit-remaining: %d\r\nratelimit-reset: %d\r\n"
                % (self.limit, remaining, reset)
            )
        if "x" in families:
            lines += (
                b"x-ratelimit-limit: %d\r\nx-ratelimit-remaining: %d\r\nx-ratelimit-reset: %d\r\n"
                % (self.limit, remaining, int(time.time()) + reset)
            )
        if not self.allowed:
            lines += b"retry-after: %d\r\n" % max(1, self.retry_after_s)
        return lines


class LocalWindows:
    """Sliding-window counters of one process, with `limits`' arithmetic.

    Windows are aligned to the epoch (window `int(now / expiry)`); a request is allowed
    when `floor(previous * previous_ttl / expiry + current) + 1 <= limit`, where
    `previous_ttl` is what is left of the current window. Counters of windows older than
    the previous one are dropped by a sweep at most once a minute.
    """

    __slots__ = ("_next_sweep", "_pairs", "_slots")

    def __init__(self) -> None:
        # (namespace, limit, expiry, who) -> [window index, count in it, count in the one before]
        self._slots: dict[tuple[str, int, int, str], list[int]] = {}
        # (who, rpm, burst) -> its (burst, rpm) slots of `_slots`, for `hit_plan`
        self._pairs: dict[tuple[str, int, int], tuple[list[int], list[int]]] = {}
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
        (allowed, remaining, seconds to reset), in one pass over one slot pair.

        The request path of every API call: `_window` and `_weighted` written out inline
        (2.4 -> 1.9 µs a call, docs/benchmarks.md "Stop 19"), the caller's two slots found
        with one lookup (`_pairs`).
        The arithmetic is theirs, operation for operation (the Redis script's oracle:
        tests/security/test_ratelimit_redis.py)."""
        if now >= self._next_sweep:
            self._sweep(now)
        pair = self._pairs.get((who, rpm, burst))
        if pair is None:
            pair = self._pairs[(who, rpm, burst)] = (
                self._window(("burst", burst, _SECOND, who), _SECOND, now),
                self._window(("rpm", rpm, _MINUTE, who), _MINUTE, now),
            )
        second, minute = pair
        # _window(second, _SECOND, now), then _weighted
        index = int(now / _SECOND)
        if second[0] != index:
            second[2] = second[1] if second[0] == index - 1 else 0
            second[0], second[1] = index, 0
        previous = second[2]
        if previous:
            previous_ttl = (1 - (((now - _SECOND) / _SECOND) % 1)) * _SECOND
            weighted = previous * previous_ttl / _SECOND + second[1]
        else:
            weighted = float(second[1])
        allowed = math.floor(weighted) + 1 <= burst
        # _window(minute, _MINUTE, now), then _weighted
        index = int(now / _MINUTE)
        if minute[0] != index:
            minute[2] = minute[1] if minute[0] == index - 1 else 0
            minute[0], minute[1] = index, 0
        previous = minute[2]
        if previous:
            previous_ttl = (1 - (((now - _MINUTE) / _MINUTE) % 1)) * _MINUTE
            weighted = previous * previous_ttl / _MINUTE + minute[1]
        else:
            weighted = float(minute[1])
        if allowed:
            second[1] += 1
            allowed = math.floor(weighted) + 1 <= rpm
            if allowed:
                minute[1] += 1
                weighted += 1
        current = minute[1]
        remaining = max(0, rpm - math.floor(weighted))
        if not (previous or current):
            return allowed, remaining, 0.0
        reset = math.inf
        if previous:
            reset = previous_ttl % (_MINUTE / previous)
        if current:
            reset = min(reset, ((1 - ((now / _MINUTE) % 1)) * _MINUTE + _MINUTE) % _MINUTE)
        return allowed, remaining, reset

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + 60
        self._pairs.clear()  # they hold slots the sweep may drop; rebuilt on the next hit
        stale = [k for k, slot in self._slots.items() if slot[0] < int(now / k[2]) - 1]
        for key in stale:
            del self._slots[key]

    def clear(self) -> None:
        self._slots.clear()
        self._pairs.clear()


# LocalWindows' arithmetic, one hash per (window, caller): w = index of the current window
# (epoch-aligned), c = hits in it, p = hits in the one before. ARGV[1] is the time in
# seconds, "" for Redis' own clock (TIME: one clock for every replica). Two keys (the
# burst and the minute window): one request against a plan, ARGV[2] burst, ARGV[3] rpm,
# returns {allowed, remaining, seconds to reset as a string}. One key: ARGV[2] limit,
# ARGV[3] expiry, ARGV[4] "hit" or "test", returns allowed. Python's `x % y` on positive
# floats is C's fmod, hence math.fmod: the results are bit for bit LocalWindows'.
_WINDOWS_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function load(key, expiry)
  local index = math.floor(now / expiry)
  local s = redis.call('HMGET', key, 'w', 'c', 'p')
  local w, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if w ~= index then
    if w == index - 1 then p = c else p = 0 end
    c = 0
  end
  return {key = key, expiry = expiry, index = index, c = c, p = p}
end
local function weighted(s)
  if s.p == 0 then return s.c end
  local ttl = (1 - math.fmod((now - s.expiry) / s.expiry, 1)) * s.expiry
  return s.p * ttl / s.expiry + s.c
end
local function count(s)
  s.c = s.c + 1
  redis.call('HSET', s.key, 'w', s.index, 'c', s.c, 'p', s.p)
  -- Until the end of the next window: the last one whose weighting reads these counts.
  redis.call('PEXPIRE', s.key, math.ceil(((s.index + 2) * s.expiry - now) * 1000))
end
if #KEYS == 1 then
  local s = load(KEYS[1], tonumber(ARGV[3]))
  local allowed = math.floor(weighted(s)) + 1 <= tonumber(ARGV[2])
  if allowed and ARGV[4] == 'hit' then count(s) end
  return allowed and 1 or 0
end
local burst, rpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local second, minute = load(KEYS[1], 1), load(KEYS[2], 60)
local allowed = math.floor(weighted(second)) + 1 <= burst
local w = weighted(minute)
if allowed then
  count(second)
  allowed = math.floor(w) + 1 <= rpm
  if allowed then
    count(minute)
    w = w + 1
  end
end
local reset = 0
if minute.p > 0 or minute.c > 0 then
  reset = math.huge
  if minute.p > 0 then
    reset = math.fmod((1 - math.fmod((now - 60) / 60, 1)) * 60, 60 / minute.p)
  end
  if minute.c > 0 then
    reset = math.min(reset, math.fmod((1 - math.fmod(now / 60, 1)) * 60 + 60, 60))
  end
end
return {allowed and 1 or 0, math.max(0, rpm - math.floor(w)), string.format('%.17g', reset)}
"""


class RedisWindows:
    """`LocalWindows` on Redis, shared by every worker and replica: each call is one
    EVALSHA of `_WINDOWS_LUA` (redis-py loads the script again after a NOSCRIPT, e.g. on a
    restarted server). `now` is for tests; left out, the script reads Redis' clock."""

    def __init__(self, url: str, timeout_s: float = 5.0, prefix: str = "cp:rl:") -> None:
        self.redis = Redis(connection_pool=redis_pool(url, timeout_s))
        self._script = self.redis.register_script(_WINDOWS_LUA)
        self.prefix = prefix

    def key(self, namespace: str, limit: int, expiry: int, who: str) -> str:
        # `who` as the hash tag: a plan's two windows live in one cluster slot.
        return f"{self.prefix}{{{who}}}:{namespace}:{limit}/{expiry}"

    async def hit_plan(
        self, who: str, rpm: int, burst: int, now: float | None = None
    ) -> tuple[bool, int, float]:
        """`LocalWindows.hit_plan` in one round trip."""
        keys = (self.key("burst", burst, _SECOND, who), self.key("rpm", rpm, _MINUTE, who))
        args = ("" if now is None else now, burst, rpm)
        allowed, remaining, reset = await self._script(keys, args)
        return bool(allowed), int(remaining), float(reset)

    async def hit(
        self, namespace: str, limit: int, expiry: int, who: str, now: float | None = None
    ) -> bool:
        return await self._one(namespace, limit, expiry, who, now, "hit")

    async def test(
        self, namespace: str, limit: int, expiry: int, who: str, now: float | None = None
    ) -> bool:
        return await self._one(namespace, limit, expiry, who, now, "test")

    async def _one(
        self, namespace: str, limit: int, expiry: int, who: str, now: float | None, mode: str
    ) -> bool:
        """One window, `hit` (count if allowed) or `test` (count nothing), in one call."""
        key = self.key(namespace, limit, expiry, who)
        return bool(await self._script((key,), ("" if now is None else now, limit, expiry, mode)))

    async def clear(self) -> None:
        """Delete every counter under this prefix (SCAN, not KEYS: never blocks Redis)."""
        batch = [k async for k in self.redis.scan_iter(match=self.prefix + "*", count=1000)]
        for start in range(0, len(batch), 1000):
            await self.redis.unlink(*batch[start : start + 1000])

    async def aclose(self) -> None:
        await self.redis.connection_pool.disconnect()


class LimitsWindows:
    """The same calls through a `limits` async storage: three round trips a request on
    Redis. For storage URIs other than memory:// and redis://, and the baseline of
    `python -m bench ratelimit`."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        uri, options = storage_url(url, timeout_s)
        storage = storage_from_string(uri, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[tuple[str, int, int], RateLimitItem] = {}

    def _item(self, namespace: str, limit: int, expiry: int) -> RateLimitItem:
        item = self._items.get((namespace, limit, expiry))
        if item is None:
            item = RateLimitItemPerSecond(limit, expiry, namespace=namespace)
            self._items[(namespace, limit, expiry)] = item
        return item

    async def hit_plan(self, who: str, rpm: int, burst: int) -> tuple[bool, int, float]:
        strategy, minute = self._strategy, self._item("rpm", rpm, _MINUTE)
        allowed = await strategy.hit(self._item("burst", burst, _SECOND), who)
        if allowed:
            allowed = await strategy.hit(minute, who)
        stats = await strategy.get_window_stats(minute, who)
        return allowed, stats.remaining, stats.reset_time - time.time()

    async def hit(self, namespace: str, limit: int, expiry: int, who: str) -> bool:
        return await self._strategy.hit(self._item(namespace, limit, expiry), who)

    async def test(self, namespace: str, limit: int, expiry: int, who: str) -> bool:
        return await self._strategy.test(self._item(namespace, limit, expiry), who)

    async def clear(self) -> None:
        await self.storage.reset()


class RateLimiter:
    """A worker's rate limits: plans (REST requests) and failed authentications, counted
    by `LocalWindows` (`memory://`), `RedisWindows` (`redis://`, `rediss://`) or
    `LimitsWindows` (any other `limits` async storage URI)."""

    def __init__(
        self,
        url: str,
        auth_failures_per_minute: int,
        timeout_s: float = 5.0,
        redis_prefix: str = "cp:rl:",
        header_families: Sequence[str] = HEADER_FAMILIES,
    ) -> None:
        self._auth_limit = max(1, auth_failures_per_minute)
        unknown = set(header_families) - set(HEADER_FAMILIES)
        if unknown:
            raise ValueError(f"unknown rate-limit header families: {sorted(unknown)}")
        # In HEADER_FAMILIES' order, each once: the headers' order does not follow the setting.
        self._families = tuple(f for f in HEADER_FAMILIES if f in header_families)
        self._local: LocalWindows | None = None
        self._shared: RedisWindows | LimitsWindows | None = None
        if url.startswith("memory://"):
            self._local = LocalWindows()
        elif url.startswith(("redis://", "rediss://")):
            self._shared = RedisWindows(url, timeout_s, redis_prefix)
        else:
            self._shared = LimitsWindows(url, timeout_s)
        self._policies: dict[str, str] = {}

    def _policy(self, plan: Plan) -> str:
        policy = self._policies.get(plan.name)
        if policy is None:
            policy = f'"minute";q={plan.rpm};w=60, "burst";q={plan.burst};w=1'
            self._policies[plan.name] = policy
        return policy

    @property
    def local(self) -> bool:
        """Whether the counters are this process's (`hit_now` may be used)."""
        return self._local is not None

    async def hit(self, plan: Plan, who: str) -> RateDecision:
        """Count one request of `who` (a principal's limit id) against its plan. On Redis,
        one round trip; a Redis error (down, timeout) propagates to the caller."""
        if self._local is not None:
            return self.hit_now(plan, who)
        assert self._shared is not None
        return self._decision(plan, await self._shared.hit_plan(who, plan.rpm, plan.burst))

    def hit_now(self, plan: Plan, who: str) -> RateDecision:
        """`hit` on this process's counters (`local` only)."""
        assert self._local is not None
        return self._decision(plan, self._local.hit_plan(who, plan.rpm, plan.burst, time.time()))

    def _decision(self, plan: Plan, counted: tuple[bool, int, float]) -> RateDecision:
        allowed, remaining, reset_in = counted
        reset_s = max(0, math.ceil(reset_in))
        retry = max(1, reset_s) if not allowed and remaining <= 0 else 1
        policy = self._policy(plan)
        return RateDecision(allowed, plan.rpm, remaining, reset_s, retry, policy, self._families)

    async def auth_blocked(self, address: str) -> bool:
        if self._local is not None:
            return not self._local.test("auth", self._auth_limit, _MINUTE, address, time.time())
        assert self._shared is not None
        return not await self._shared.test("auth", self._auth_limit, _MINUTE, address)

    async def auth_failed(self, address: str) -> None:
        if self._local is not None:
            self._local.hit("auth", self._auth_limit, _MINUTE, address, time.time())
            return
        assert self._shared is not None
        await self._shared.hit("auth", self._auth_limit, _MINUTE, address)

    async def reset(self) -> None:
        if self._local is not None:
            self._local.clear()
        else:
            assert self._shared is not None
            await self._shared.clear()

    async def aclose(self) -> None:
        """Close the Redis connections (nothing to do in process or through `limits`)."""
        if isinstance(self._shared, RedisWindows):
            await self._shared.aclose()
