"""Plain ASGI middleware on the hot path: request id, API-Version, latency by route template."""

from __future__ import annotations

import time
from collections.abc import Iterable
from random import getrandbits

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cryptopulse.api.metrics import REGISTRY

REQUEST_SECONDS = Histogram(
    "cryptopulse_http_request_duration_seconds",
    "HTTP request latency by route template",
    ("method", "route", "status"),
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

_MAX_REQUEST_ID = 128
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# (method, route template, status) -> its histogram child: `labels()` validates and locks on
# every call (~5 % of a cached ticker request); the label sets are few and bounded.
_TIMERS: dict[tuple[str, str, int], Histogram] = {}


def _timer(method: str, route: str, status: int) -> Histogram:
    # Any other method token a client sends is one label value, not one series each.
    key = (method if method in _METHODS else "OTHER", route, status)
    timer = _TIMERS.get(key)
    if timer is None:
        timer = _TIMERS[key] = REQUEST_SECONDS.labels(key[0], route, str(status))
    return timer


def _route_template(scope: Scope) -> str:
    # The router leaves the matched route in the scope; label by its template, never the path.
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def request_id_of(scope: Scope) -> bytes:
    """The request's id (the client's `X-Request-ID` if printable, else a new one), also
    left in the scope's state for problem documents and logs."""
    request_id = ""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            request_id = value.decode("latin-1")[:_MAX_REQUEST_ID]
            break
    if not request_id.isprintable() or not request_id:
        # uuid4().hex's shape at a tenth of its cost: an id, not a secret (no syscall; the
        # generator is reseeded in every forked worker).
        request_id = getrandbits(128).to_bytes(16).hex()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id.encode("latin-1")


def with_context(headers: Iterable[tuple[bytes, bytes]], rid: bytes) -> list[tuple[bytes, bytes]]:
    """A response's headers with the request id and the API version added."""
    headers = list(headers)
    headers.append((b"x-request-id", rid))
    headers.append((b"api-version", b"1"))
    return headers


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request's latency by route template."""
    _timer(method, route, status).observe(seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = with_context(message.get("headers", ()), rid)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            observe(scope["method"], _route_template(scope), status, time.perf_counter() - started)
