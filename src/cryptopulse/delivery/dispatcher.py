"""The webhook dispatcher: claims due deliveries with a lease, signs and POSTs them, and
records each attempt. At-least-once: a delivery is marked delivered only after a 2xx, so
a worker killed mid-send leaves it leased; once the lease ends it is sent again with the
same `webhook-id` (receivers de-duplicate on it).

Per attempt: the SSRF guard resolves and checks the URL again and the request goes to the
checked address; redirects are not followed; 15 s timeout. 2xx: delivered. 410: the
endpoint is disabled. 429/503: `Retry-After` is honoured (at least the schedule's delay).
Otherwise the next attempt follows the schedule with jitter; when it is exhausted the
delivery fails, and an endpoint failing for `disable_after_s` (5 days) is disabled with
the reason shown to its owner.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from cryptopulse.delivery.backoff import DEFAULT_SCHEDULE_S, next_delay_s, retry_after_s
from cryptopulse.delivery.sealing import SealError, unseal
from cryptopulse.delivery.signing import webhook_headers
from cryptopulse.delivery.ssrf import Resolver, Target, UnsafeTarget, resolve_target
from cryptopulse.store.alerts import AlertStore, DueDelivery, EndpointRow

__all__ = ["DispatchPolicy", "Outcome", "WebhookDispatcher"]

_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    schedule_s: Sequence[float] = DEFAULT_SCHEDULE_S
    timeout_s: float = 15.0
    allow_private: bool = False
    lease_s: float = 30.0
    batch: int = 100
    concurrency: int = 32
    disable_after_s: float = 5 * 86_400.0
    secrets_key: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    retry_after_s: float | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def live_secrets(endpoint: EndpointRow, now: int, key: str | None) -> list[str]:
    """The current secret, and the previous one while its grace period lasts."""
    found = [unseal(endpoint.secret, key)]
    if endpoint.previous_secret and (endpoint.previous_until or 0) > now:
        found.append(unseal(endpoint.previous_secret, key))
    return found


def _pinned(url: str, target: Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, the Host header and the TLS name."""
    parts = urlsplit(url)
    address = target.addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
    netloc = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, {"host": netloc}, extensions


class WebhookDispatcher:
    def __init__(
        self,
        db: AlertStore,
        policy: DispatchPolicy,
        clock: Callable[[], int],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.resolver = resolver
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)
        self.client = httpx.AsyncClient(
            transport=transport, follow_redirects=False, timeout=policy.timeout_s
        )
        self.sent = 0
        self.delivered = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def dispatch_once(self) -> int:
        """Claim and send one batch of due deliveries; returns how many were attempted."""
        policy = self.policy
        due = await self.db.claim_due(self.clock(), int(policy.lease_s * 1000), policy.batch)
        if not due:
            return 0
        gate = asyncio.Semaphore(policy.concurrency)

        async def one(item: DueDelivery) -> None:
            async with gate:
                await self._deliver(item)

        await asyncio.gather(*(one(item) for item in due))
        return len(due)

    async def attempt(self, endpoint: EndpointRow, msg_id: str, body: bytes) -> Outcome:
        """One signed POST of `body` to `endpoint` (SSRF-checked at send time)."""
        started = time.perf_counter()
        try:
            target = await resolve_target(
                endpoint.url, allow_private=self.policy.allow_private, resolver=self.resolver
            )
            secrets = live_secrets(endpoint, self.clock(), self.policy.secrets_key)
        except (UnsafeTarget, SealError) as exc:
            return Outcome(None, f"refused: {exc}"[:_ERROR_CHARS], None, 0)
        # The signature's timestamp is wall-clock seconds (receivers check it for replay).
        headers = webhook_headers(secrets, msg_id, int(time.time()), body)
        url, host, extensions = _pinned(endpoint.url, target)
        self.sent += 1
        try:
            response = await self.client.post(
                url, content=body, headers=headers | host, extensions=extensions
            )
        except httpx.TimeoutException:
            timeout = f"timed out after {self.policy.timeout_s:g} s"
            return Outcome(None, timeout, None, _ms_since(started))
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            return Outcome(None, failure, None, _ms_since(started))
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = retry_after_s(response.headers.get("retry-after"), time.time())
        error: str | None = None
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error = f"HTTP {response.status_code}: redirects are not followed"
        return Outcome(response.status_code, error, retry_after, _ms_since(started))

    async def _deliver(self, item: DueDelivery) -> None:
        delivery, endpoint = item.delivery, item.endpoint
        outcome = await self.attempt(endpoint, delivery.event_id, item.body.encode())
        now = self.clock()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status": outcome.status,
            "last_error": outcome.error,
            "lease_until": 0,
        }
        update = self._judge(endpoint, outcome, attempts, now, values)
        attempt = {
            "delivery_id": delivery.id,
            "endpoint_id": endpoint.id,
            "time": now,
            "status_code": outcome.status,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
        }
        await self.db.finish(delivery.id, values, attempt, update)
        if outcome.ok:
            self.delivered += 1

    def _judge(
        self,
        endpoint: EndpointRow,
        outcome: Outcome,
        attempts: int,
        now: int,
        values: dict[str, Any],
    ) -> tuple[str, dict[str, Any]] | None:
        """Set the delivery's next state in `values`; return the endpoint's update."""
        done = {"status": "failed", "next_attempt_at": None}
        if outcome.ok:
            values.update(status="delivered", next_attempt_at=None)
            return (endpoint.id, {"failing_since": None}) if endpoint.failing_since else None
        if outcome.status == 410:
            values.update(done)
            reason = "disabled: the endpoint answered 410 Gone"
            return endpoint.id, {"enabled": False, "disabled_reason": reason, "updated_at": now}
        since = endpoint.failing_since or now
        if now - since >= self.policy.disable_after_s * 1000:
            values.update(done)
            days = self.policy.disable_after_s / 86_400
            reason = f"disabled: failing since {_iso(since)} ({days:g} days); last: {outcome.error}"
            fields = {"enabled": False, "disabled_reason": reason[:_ERROR_CHARS], "updated_at": now}
            return endpoint.id, fields
        delay = next_delay_s(self.policy.schedule_s, attempts, self.rng)
        if delay is None:
            values.update(done)
        else:
            delay = max(delay, outcome.retry_after_s or 0.0)
            values.update(status="pending", next_attempt_at=now + int(delay * 1000))
        return (endpoint.id, {"failing_since": now}) if endpoint.failing_since is None else None


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
