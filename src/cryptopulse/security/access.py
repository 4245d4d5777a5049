"""Access control at serving time: who is calling, may they, and how much.

Key lookups are cached per worker for `key_cache_ttl_s` (at most 1 s), so a revocation or a
rotation's end holds on every worker within that time, without a store round trip per
request. A JWT is checked against its key the same way: revoking a key ends its tokens.
A key in use is read again in the background once its entry is half the TTL old, so a
steady caller never waits for the store (before, one request per key per second did, behind
whatever the store was doing: the REST tail); an entry older than the TTL is never used.
A change made through this process's `AccessControl.db` (the admin API: revoke, rotate,
any key update) drops the key from this worker's caches at once.

On top of the key records, the principal of every credential verified here is cached by
the credential's SHA-256 (the hash the store keeps of a key), so a repeated request costs
one hash and two dict lookups: no key parsing, no checksum, no JWT signature check. Such an
entry holds only while the key record it was verified against is the cached one, still
fresh and still valid (and a JWT's `exp` is ahead), so it never outlives the key cache.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptopulse.security.bootstrap import bootstrap_first_key
from cryptopulse.security.keys import hash_key, looks_like_key, parse_key
from cryptopulse.security.plans import Plan, load_plans
from cryptopulse.security.ratelimit import RateDecision, RateLimiter
from cryptopulse.security.redaction import install_log_redaction
from cryptopulse.security.scopes import Principal
from cryptopulse.security.tokens import TokenError, TokenIssuer
from cryptopulse.security.usage import UsageRecorder, month_of
from cryptopulse.settings import PLACEHOLDER_SECRET, Settings
from cryptopulse.store.security import AuditEntry, KeyRecord, SecurityStore
from cryptopulse.store.sql import SQLStore

__all__ = ["ANONYMOUS_SCOPES", "AccessControl", "AuthError", "QuotaExceeded"]

log = logging.getLogger(__name__)

# What the public read-only plan may do when `anonymous_plan` is set.
ANONYMOUS_SCOPES = frozenset({"market:read", "signals:read"})


class AuthError(Exception):
    """401: no usable credential. The message is safe to return (never echoes the token)."""

    def __init__(self, message: str, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class QuotaExceeded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__("monthly request quota exceeded")
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Cached:
    loaded: float  # time.monotonic()
    record: KeyRecord | None
    month: str
    month_total: int


class _NotifyingStore(SecurityStore):
    """The security store, telling this worker's caches about every key it changes."""

    def __init__(self, store: SQLStore, changed: Callable[[str], None]) -> None:
        super().__init__(store)
        self._changed = changed

    async def insert_key(self, record: KeyRecord, audit: AuditEntry | None = None) -> None:
        try:
            await super().insert_key(record, audit)
        finally:
            self._changed(record.key_id)

    async def update_key(self, key_id: str, audit: AuditEntry | None, **values: Any) -> bool:
        try:
            return await super().update_key(key_id, audit, **values)
        finally:
            self._changed(key_id)

    async def rotate_key(
        self, key_id: str, new: KeyRecord, old_expires_at: int, audit: AuditEntry
    ) -> None:
        try:
            await super().rotate_key(key_id, new, old_expires_at, audit)
        finally:
            self._changed(key_id)
            self._changed(new.key_id)


class AccessControl:
    """Authentication, plans, rate limits, quotas and usage for one worker."""

    def __init__(self, settings: Settings, store: SQLStore) -> None:
        self.settings = settings
        self.db: SecurityStore = _NotifyingStore(store, self.forget)
        self.plans: dict[str, Plan] = load_plans(settings.plans)
        secret = settings.jwt_secret
        if secret == PLACEHOLDER_SECRET:
            # Development only (production refuses the placeholder at start).
            secret = secrets.token_urlsafe(32)
        self.tokens = TokenIssuer(
            secret,
            settings.jwt_previous_secrets,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.jwt_ttl_s,
        )
        self.limiter = RateLimiter(
            settings.rate_limit_storage_url,
            settings.auth_failures_per_minute,
            settings.outbound_timeout_s,
            redis_prefix=settings.redis_prefix + "rl:",  # deployments sharing a Redis differ
            header_families=settings.rate_limit_headers,
        )
        self.usage = UsageRecorder(self.db, settings.usage_flush_interval_s, self._flushed)
        self._ttl = settings.key_cache_ttl_s
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Future[_Cached]] = {}
        # sha256(credential) -> (its principal, the key entry it was verified against)
        self._verified: dict[str, tuple[Principal, _Cached]] = {}
        self._generation = 0  # bumped by `forget`: a load begun before it is not cached
        self.connections: Counter[str] = Counter()
        if settings.anonymous_plan is not None and settings.anonymous_plan not in self.plans:
            raise ValueError(f"anonymous_plan {settings.anonymous_plan!r} is not a plan")

    async def start(self) -> None:
        install_log_redaction()
        await bootstrap_first_key(self.settings, self.db, set(self.plans))
        self.usage.start()
        if self.settings.jwt_secret == PLACEHOLDER_SECRET:
            log.warning("CRYPTOPULSE_JWT_SECRET is not set: tokens hold in this process only")

    async def stop(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()  # background re-reads (refresh ahead): the store is closing
        try:
            await self.usage.stop()
        except Exception:
            log.exception("final usage flush failed")
        await self.limiter.aclose()

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.plans["free"]

    # --- authentication -------------------------------------------------------------------

    def anonymous(self) -> Principal | None:
        name = self.settings.anonymous_plan
        if name is None:
            return None
        return Principal("anonymous", ANONYMOUS_SCOPES, name, None, "anonymous")

    def verified(self, credential: str) -> Principal | None:
        """The principal of a credential this worker verified and still trusts (its key
        record fresh and valid), without any I/O; None: `authenticate` must check it."""
        return self._trusted(hash_key(credential))

    def _trusted(self, digest: str) -> Principal | None:
        verified = self._verified.get(digest)
        if verified is None:
            return None
        principal, entry = verified
        if self._still_valid(principal, entry):
            self._refresh_ahead(entry)
            return principal
        self._verified.pop(digest, None)
        return None

    async def authenticate(self, credential: str) -> Principal:
        """The principal of an API key or a JWT we issued, or AuthError."""
        digest = hash_key(credential)
        principal = self._trusted(digest)
        if principal is not None:
            return principal
        if looks_like_key(credential):
            record, entry = await self._check_key(credential, digest)
            principal = Principal(
                record.account, _scopes(record), record.plan, record.key_id, "key"
            )
        elif credential.count(".") == 2:
            principal, entry = await self._check_token(credential)
        else:
            raise AuthError("not an API key or a token")
        if len(self._verified) > 100_000:  # bounded, as the key cache
            self._verified.clear()
        self._verified[digest] = (principal, entry)
        return principal

    def _still_valid(self, principal: Principal, entry: _Cached) -> bool:
        # Verified against the key record this worker holds now, fresh, and valid now.
        record = entry.record
        return (
            record is not None
            and self._cache.get(record.key_id) is entry
            and time.monotonic() - entry.loaded < self._ttl
            and record.valid_at(int(time.time() * 1000))
            and (principal.expires_at is None or time.time() < principal.expires_at)
        )

    async def _check_key(self, key: str, digest: str) -> tuple[KeyRecord, _Cached]:
        parsed = parse_key(key)
        if parsed is None:
            raise AuthError("malformed API key")
        entry = await self._lookup(parsed.key_id)
        record = entry.record
        if (
            record is None
            or not record.valid_at(int(time.time() * 1000))
            or not hmac.compare_digest(record.key_hash, digest)
        ):
            raise AuthError("unknown, revoked or expired API key")
        return record, entry

    async def _check_token(self, token: str) -> tuple[Principal, _Cached]:
        try:
            claims = self.tokens.verify(token)
        except TokenError as exc:
            raise AuthError(str(exc)) from None
        entry = await self._lookup(claims.key_id)
        owner = entry.record
        if (
            owner is None
            or not owner.valid_at(int(time.time() * 1000))
            or owner.account != claims.account
        ):
            raise AuthError("the token's key is revoked or expired")
        scopes = claims.scopes & _scopes(owner)
        principal = Principal(
            owner.account, scopes, owner.plan, owner.key_id, "jwt", claims.expires_at
        )
        return principal, entry

    def forget(self, key_id: str) -> None:
        """Drop what this worker holds about `key_id` (it changed in the store)."""
        self._generation += 1
        self._cache.pop(key_id, None)
        self._loading.pop(key_id, None)
        self._verified.clear()  # rare (key changes), and entries of key_id are not indexed

    async def active_key(self, key_id: str) -> KeyRecord | None:
        """The key's record if it is valid now (cached up to `key_cache_ttl_s`)."""
        entry = await self._lookup(key_id)
        record = entry.record
        if record is None or not record.valid_at(int(time.time() * 1000)):
            return None
        return record

    async def _lookup(self, key_id: str) -> _Cached:
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached.loaded < self._ttl:
            self._refresh_ahead(cached)
            return cached
        # One store lookup per key at a time, however many requests are waiting for it. The
        # lookup runs as its own task and callers wait through a shield, so a caller that is
        # cancelled (client gone) cancels only its own wait, never the others'.
        return await asyncio.shield(self._loading_task(key_id))

    def _loading_task(self, key_id: str) -> asyncio.Future[_Cached]:
        task = self._loading.get(key_id)
        if task is None:
            task = asyncio.ensure_future(self._load_into_cache(key_id))
            self._loading[key_id] = task
            task.add_done_callback(lambda done: self._finish_loading(key_id, done))
        return task

    def _refresh_ahead(self, entry: _Cached) -> None:
        """Read a key in use again in the background once its entry is half the TTL old:
        the next requests keep the fresh entry and never wait for the store."""
        record = entry.record
        if (
            record is not None
            and time.monotonic() - entry.loaded >= self._ttl / 2
            and record.key_id not in self._loading
            and self._cache.get(record.key_id) is entry
        ):
            self._loading_task(record.key_id)

    def _finish_loading(self, key_id: str, task: asyncio.Future[_Cached]) -> None:
        if self._loading.get(key_id) is task:
            del self._loading[key_id]
        if not task.cancelled():
            task.exception()  # retrieved: waiters re-raise it, nobody logs it twice

    async def _load_into_cache(self, key_id: str) -> _Cached:
        generation = self._generation
        entry = await self._load(key_id)
        if generation != self._generation:
            return entry  # a key changed meanwhile: this read may predate it, do not keep it
        if len(self._cache) > 100_000:  # random ids must not grow it without bound
            self._cache.clear()
        self._cache[key_id] = entry
        return entry

    def _flushed(self, by_month: Mapping[tuple[str, str], int]) -> None:
        # The counts just written are in the store now: keep them in the cached totals until
        # the next load reads them from there.
        for (key_id, month), n in by_month.items():
            entry = self._cache.get(key_id)
            if entry is not None and entry.month == month:
                entry.month_total += n

    async def _load(self, key_id: str) -> _Cached:
        # Stamped when the read begins: the entry is never trusted longer than the TTL
        # after the store said so, however long the read took.
        started = time.monotonic()
        month = month_of(time.time())
        record = await self.db.get_key(key_id)
        total = 0
        if record is not None:
            total = sum((await self.db.usage([key_id], month)).values())
        return _Cached(started, record, month, total)

    # --- limits ---------------------------------------------------------------------------

    async def admit(self, principal: Principal) -> RateDecision:
        """Count one REST request; raises QuotaExceeded over the monthly quota."""
        plan = self._within_quota(principal)
        decision = await self.limiter.hit(plan, principal.limit_id)
        self._count(principal, decision)
        return decision

    def admit_now(self, principal: Principal) -> RateDecision | None:
        """`admit` when the limiter counts in this process (no I/O, no await); None when it
        counts elsewhere (Redis), where `admit` must be awaited. Counts nothing then."""
        if not self.limiter.local:
            return None
        plan = self._within_quota(principal)
        decision = self.limiter.hit_now(plan, principal.limit_id)
        self._count(principal, decision)
        return decision

    def _within_quota(self, principal: Principal) -> Plan:
        plan = self.plan(principal.plan)
        key_id = principal.key_id
        if key_id is not None:
            entry = self._cache.get(key_id)
            if entry is not None:
                used = entry.month_total + self.usage.pending_in_month(key_id, entry.month)
                if used >= plan.monthly_quota:
                    raise QuotaExceeded(_seconds_to_next_month())
        return plan

    def _count(self, principal: Principal, decision: RateDecision) -> None:
        if decision.allowed and principal.key_id is not None:
            self.usage.count(principal.key_id)

    def open_connection(self, principal: Principal) -> bool:
        """Reserve a stream connection slot of the principal's plan (this worker)."""
        who = principal.limit_id
        if self.connections[who] >= self.plan(principal.plan).ws_connections:
            return False
        self.connections[who] += 1
        return True

    def close_connection(self, principal: Principal) -> None:
        who = principal.limit_id
        self.connections[who] -= 1
        if self.connections[who] <= 0:
            del self.connections[who]


def _scopes(record: KeyRecord) -> frozenset[str]:
    return frozenset(record.scopes.split())


def _seconds_to_next_month() -> int:
    now = datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return math.ceil((datetime(year, month, 1, tzinfo=UTC) - now).total_seconds())
