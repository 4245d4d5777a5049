"""Plain ASGI middleware: request body limit (413), repeated query parameters (422),
security headers, rate-limit headers.

One pass over the response start for the headers, on the hot path of every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cryptopulse.api.errors import PROBLEM_BASE, PROBLEM_JSON

if TYPE_CHECKING:
    from cryptopulse.security.ratelimit import RateDecision

__all__ = ["CORS_EXPOSED", "SecurityHeadersMiddleware", "api_headers", "repeated_query_name"]

# Response headers a browser client may read across origins.
CORS_EXPOSED = [
    "X-Request-ID",
    "API-Version",
    "RateLimit-Policy",
    "RateLimit",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]

_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
]
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The dashboard page (cryptopulse.web) runs its own script and stylesheet and talks to this
# origin only: nothing inline, nothing from elsewhere.
_PAGE_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
)
# The interactive docs load their scripts and styles from a CDN; they get no CSP.
_DOCS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if await self._refused(scope, send):
            return
        received = 0
        started = too_large = False
        path = scope["path"]
        csp = None if path.startswith(_DOCS) else _PAGE_CSP if path == "/" else _CSP

        async def counted() -> Message:
            # A streamed body without Content-Length: stop it at the limit by telling the
            # app the client left, and answer 413 ourselves.
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = _with_headers(
                    message.get("headers", ()), csp, rate_headers(scope)
                )
            await send(message)

        try:
            await self.app(scope, counted, send_wrapper)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            started = True
            await self._too_large(scope, send)

    async def _refused(self, scope: Scope, send: Send) -> bool:
        """Answer what is refused before the app runs; True if it was."""
        if _declared_too_large(scope, self.max_body):
            await self._too_large(scope, send)
            return True
        repeated = repeated_query_name(scope.get("query_string", b""))
        if repeated is not None:
            # No parameter of this API is a list: a repeated one is HTTP parameter pollution
            # (front ends and back ends disagree on which copy wins), never a valid request.
            # 422 with the field, as any other invalid query parameter of this API.
            errors = [{"field": repeated, "message": "given more than once"}]
            detail = f"invalid: {repeated}"
            await _problem(scope, send, 422, "validation", "Unprocessable Content", detail, errors)
            return True
        return False

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_body} bytes"
        await _problem(scope, send, 413, "content-too-large", "Content Too Large", detail)


async def _problem(
    scope: Scope,
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
) -> None:
    """A problem document sent before the app ran; the connection closes after it."""
    fields: dict[str, object] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
        "request_id": scope.get("state", {}).get("request_id"),
    }
    if errors is not None:
        fields["errors"] = errors
    body = orjson.dumps(fields)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    headers = _with_headers(headers, _CSP, None)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def repeated_query_name(query: bytes) -> str | None:
    if b"&" not in query:  # the common case: nothing to parse
        return None
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name[:64]
        seen.add(name)
    return None


def _declared_too_large(scope: Scope, limit: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


def rate_headers(scope: Scope) -> list[tuple[bytes, bytes]] | None:
    """The rate-limit headers of the request's admission, if it was admitted."""
    decision: RateDecision | None = scope.get("state", {}).get("ratelimit")
    return None if decision is None else decision.headers()


def api_headers(
    given: Iterable[tuple[bytes, bytes]], rate: list[tuple[bytes, bytes]] | None
) -> list[tuple[bytes, bytes]]:
    """What this middleware sends for an API path (not the page, not the docs)."""
    return _with_headers(given, _CSP, rate)


def _with_headers(
    given: Iterable[tuple[bytes, bytes]],
    csp: tuple[bytes, bytes] | None,
    rate: list[tuple[bytes, bytes]] | None,
) -> list[tuple[bytes, bytes]]:
    headers = list(given)
    headers.extend(_HEADERS)
    if csp is not None:
        headers.append(csp)
    names = {k for k, _ in headers}
    if b"cache-control" not in names:
        headers.append((b"cache-control", b"no-store"))
    # A 429 built from the limiter's decision carries its own copy.
    if rate and rate[0][0] not in names:
        headers.extend(rate)
    return headers


# `api_headers(given, None)` after the given ones, as HTTP/1.1 header lines: the hottest
# answers write them as they are (api/_hot.py; a test compares them with the pairs).
API_LINES = b"".join(b"%s: %s\r\n" % pair for pair in api_headers((), None))
