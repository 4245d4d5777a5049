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
import weakref
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
        self._id = f"ws:{next(_ids)}"
        self.principal: Principal | None = None
        self._slot: Principal | None = None
        self._expired_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None  # auth deadline, or token expiry
        self._key_id: str | None = None  # the key the worker's key watch checks for us
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
        if self._key_id is not None:
            _watch_of(self._access).discard(self._key_id, self)
            self._key_id = None

    def _auth_deadline(self) -> None:
        self._timer = None
        if self.principal is None:
            self._close(POLICY, "authentication required")

    def _watch(self) -> None:
        """Watch what can end the credential: its key (revoked or expired; one check per
        key for every stream of the worker) and a token's expiry (a timer at that time)."""
        principal = self.principal
        if self._loop is None or self._stopped or principal is None:
            return
        if self._timer is not None:  # the auth deadline met, or the previous token renewed
            self._timer.cancel()
            self._timer = None
        self._watch_key(principal.key_id)
        if principal.expires_at is not None:
            wait = max(0.0, principal.expires_at - time.time())
            self._timer = self._loop.call_later(wait, self._token_expired)

    def _watch_key(self, key_id: str | None) -> None:
        if key_id == self._key_id:
            return
        watch = _watch_of(self._access)
        if self._key_id is not None:
            watch.discard(self._key_id, self)
        self._key_id = key_id
        if key_id is not None:
            watch.add(key_id, self)

    def _token_expired(self) -> None:
        """The token's `exp` passed: say so, and close unless renewed within the grace."""
        self._timer = None
        if self._stopped or self.principal is None or self._loop is None:
            return
        self._expired_at = time.monotonic()
        self._notify("token_expired")
        self._timer = self._loop.call_later(self._grace, self._grace_over)

    def _grace_over(self) -> None:
        self._timer = None
        if not self._stopped and self._expired_at is not None:
            self._close(POLICY, "token expired")

    def key_ended(self, code: int, reason: str) -> None:
        """Called by the worker's key watch: the key was revoked, expired, or its check
        failed."""
        if not self._stopped:
            self._close(code, reason)


class _KeyWatch:
    """Checks each key that open streams use once every `key_cache_ttl_s`, for all of the
    worker's streams: one lookup per key, not one task per connection (2,000 streams of
    one key cost one check a second, not 2,000)."""

    def __init__(self, access: AccessControl) -> None:
        self._access = access
        self._every = access.settings.key_cache_ttl_s
        self._guards: dict[str, set[StreamGuard]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, key_id: str, guard: StreamGuard) -> None:
        self._guards.setdefault(key_id, set()).add(guard)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stream-key-watch")

    def discard(self, key_id: str, guard: StreamGuard) -> None:
        guards = self._guards.get(key_id)
        if guards is not None:
            guards.discard(guard)
            if not guards:
                del self._guards[key_id]
        if not self._guards and self._task is not None:  # the last stream left
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        try:
            while self._guards:  # ends once no stream is left to watch (or is cancelled)
                await asyncio.sleep(self._every)
                for key_id in list(self._guards):
                    try:
                        ended = await self._access.active_key(key_id) is None
                    except Exception:
                        log.exception("stream: credential check failed")
                        self._end(key_id, _INTERNAL_ERROR, "internal error")
                        continue
                    if ended:
                        self._end(key_id, POLICY, "the key was revoked or expired")
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _end(self, key_id: str, code: int, reason: str) -> None:
        for guard in tuple(self._guards.pop(key_id, ())):
            guard.key_ended(code, reason)


_watches: weakref.WeakKeyDictionary[AccessControl, _KeyWatch] = weakref.WeakKeyDictionary()


def _watch_of(access: AccessControl) -> _KeyWatch:
    watch = _watches.get(access)
    if watch is None:
        watch = _watches[access] = _KeyWatch(access)
    return watch


def _handshake_credential(websocket: WebSocket) -> str | None:
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.headers.get("x-api-key") or None
