"""Access control of one `/v1/stream` connection: who it is, what it may subscribe to, how
many connections, channels and ops per second its plan allows, and when its credential ends.

Credentials come with the handshake (`Authorization: Bearer` or `X-API-Key`) or in an
`auth` op within `ws_auth_timeout_s`; never in the URL, where access logs would keep them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from starlette.websockets import WebSocket

from cryptopulse.api._stream_ops import OpError, OpId
from cryptopulse.security import AuthError, Principal
from cryptopulse.security.access import AccessControl

__all__ = ["POLICY", "TOO_MANY", "StreamGuard", "scope_for"]

POLICY = 1008  # auth or policy
TOO_MANY = 4029  # over the plan's connection limit
_INTERNAL_ERROR = 1011

log = logging.getLogger(__name__)

# Market data needs market:read; analytics channels need signals:read.
_SCOPES = {
    "trades": "market:read",
    "ticker": "market:read",
    "candles": "market:read",
    "onchain": "market:read",
    "signals": "signals:read",
    "grades": "signals:read",
    "sectors": "signals:read",
    "predictions": "signals:read",
    "alerts": "alerts:write",
}
# Per-connection op rate: one in-process counter store for every connection of the worker.
_OPS = FixedWindowRateLimiter(MemoryStorage())
_ids = itertools.count()


def scope_for(channel: str) -> str:
    return _SCOPES.get(channel.partition(":")[0], "market:read")


class StreamGuard:
    """Holds the connection's principal; `close(code, reason)` ends the connection."""

    def __init__(
        self,
        websocket: WebSocket,
        access: AccessControl,
        close: Callable[[int, str], None],
        notify: Callable[[str], None],
    ) -> None:
        settings = access.settings
        self._ws = websocket
        self._access = access
        self._close = close
        self._notify = notify  # queue a control frame to the client
        self._auth_timeout = settings.ws_auth_timeout_s
        self._grace = settings.ws_reauth_grace_s
        self._check_every = settings.key_cache_ttl_s
        self._id = f"ws:{next(_ids)}"
        self.principal: Principal | None = None
        self._slot: Principal | None = None
        self._expired_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._checking: asyncio.Task[None] | None = None
        self._watching = False
        self._stopped = False

    async def handshake(self) -> None:
        """Authenticate from the handshake headers, or as anonymous if the plan allows."""
        credential = _handshake_credential(self._ws)
        if credential is None:
            anonymous = self._access.anonymous()
            if anonymous is not None:
                self._admit(anonymous)
            return
        try:
            self._admit(await self._access.authenticate(credential))
        except AuthError as exc:
            self._close(POLICY, exc.message)

    async def auth(self, token: str, op_id: OpId) -> None:
        """The `auth` op: a new credential (first auth, or a renewal after expiry)."""
        try:
            principal = await self._access.authenticate(token)
        except AuthError as exc:
            raise OpError("invalid_token", exc.message, op_id) from None
        if self._slot is not None and principal.limit_id != self._slot.limit_id:
            raise OpError("invalid_token", "a connection keeps the key it started with", op_id)
        self._admit(principal)

    def _admit(self, principal: Principal) -> None:
        if self._slot is None:
            if not self._access.open_connection(principal):
                self._close(TOO_MANY, "over the plan's WebSocket connection limit")
                return
            self._slot = principal
        self.principal = principal
        self._expired_at = None
        self._watch()

    def release(self) -> None:
        if self._slot is not None:
            self._access.close_connection(self._slot)
            self._slot = None

    def check_op(self, op_id: OpId) -> None:
        """Before any op but `auth`: authenticated, and within the plan's op rate."""
        principal = self.principal
        if principal is None or self._expired_at is not None:
            raise OpError("auth_required", "send an auth op first", op_id)
        plan = self._access.plan(principal.plan)
        if not _OPS.hit(RateLimitItemPerSecond(plan.ws_messages_per_s), self._id):
            raise OpError("rate_limited", f"at most {plan.ws_messages_per_s} ops per second", op_id)

    def check_subscribe(self, channels: Iterable[str], held: int, op_id: OpId) -> None:
        principal = self.principal
        assert principal is not None
        for channel in channels:
            scope = scope_for(channel)
            if not principal.has(scope):
                raise OpError("forbidden", f"{channel!r} needs the {scope!r} scope", op_id)
        allowed = self._access.plan(principal.plan).subscriptions
        if held > allowed:
            message = f"the {principal.plan!r} plan allows {allowed} channels per connection"
            raise OpError("too_many_subscriptions", message, op_id)

    def start(self) -> None:
        """Arm the checks (timers, no task while idle): close 1008 on no auth in time, a
        revoked key, or an expired token not renewed."""
        self._loop = asyncio.get_running_loop()
        if self._stopped:
            return
        if self.principal is None:
            self._timer = self._loop.call_later(self._auth_timeout, self._auth_deadline)
        else:
            self._watch()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._checking is not None:
            self._checking.cancel()

    def _auth_deadline(self) -> None:
        self._timer = None
        if self.principal is None:
            self._close(POLICY, "authentication required")

    def _watch(self) -> None:
        """Check the credential every `key_cache_ttl_s` while it can end (a key, a JWT)."""
        principal = self.principal
        if self._loop is None or self._stopped or self._watching or principal is None:
            return
        if self._timer is not None:  # the auth deadline: met
            self._timer.cancel()
            self._timer = None
        if principal.key_id is None and principal.expires_at is None:
            return  # anonymous: nothing can end
        self._watching = True
        self._timer = self._loop.call_later(self._check_every, self._due)

    def _due(self) -> None:
        self._timer = None
        if not self._stopped:
            self._checking = asyncio.create_task(self._check(), name="stream-auth-check")

    async def _check(self) -> None:
        try:
            principal = self.principal
            assert principal is not None
            if principal.key_id is not None:
                if await self._access.active_key(principal.key_id) is None:
                    self._close(POLICY, "the key was revoked or expired")
                    return
            if self._token_over(principal):
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stream: credential check failed")
            self._close(_INTERNAL_ERROR, "internal error")
            return
        finally:
            self._checking = None
        if not self._stopped:
            assert self._loop is not None
            self._timer = self._loop.call_later(self._check_every, self._due)

    def _token_over(self, principal: Principal) -> bool:
        if principal.expires_at is None or time.time() < principal.expires_at:
            return False
        now = time.monotonic()
        if self._expired_at is None:
            self._expired_at = now
            self._notify("token_expired")
            return False
        if now - self._expired_at >= self._grace:
            self._close(POLICY, "token expired")
            return True
        return False


def _handshake_credential(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.headers.get("x-api-key") or None
