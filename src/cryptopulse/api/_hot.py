"""The hottest requests, answered ahead of the middleware stack.

`GET /v1/tickers/{i}` and the newest page of `GET /v1/candles/{i}` are the most requested
routes, and their answer is cached bytes (`api/_cache.py`). Through the app, each request
first passes ten ASGI layers (Starlette's error middleware, request context, security
headers, unhandled errors, the exception middleware, FastAPI's exit stack, the router, the
route and its wrapper), each a coroutine and most a `send` wrapper: a bare route returning
pre-built bytes behind them costs ~18 µs in process, more than authentication, the rate
limit and the answer together. `CryptopulseApp` offers every HTTP request to `HotPath`
first; what it answers, it answers in one coroutine doing what those layers do for it:
the request id, authentication, scope check, rate limit, security and rate-limit headers,
problem documents on errors, the latency histogram; and under uvicorn's httptools
protocol it sends the answer in one socket write (`_send_whole`, `_write_raw`). The
header lists and the problem documents come from the same functions the middleware uses
(`middleware.py`, `_hardening.py`, `errors.py`); tests/api/test_hot.py compares every
answer, header by header, with the declared route's through the stack.

What is answered here, and nothing else (everything else goes on to the stack and the
declared routes in `routers/market.py`, which document them in OpenAPI and validate any
input):

- `GET`, the path's instrument canonical and live in this process (so `market._resolve`
  would accept it without a store read), and, for a ticker, a ticker to answer with;
- for candles, a query without `start`, `end` or `cursor`, `interval` and `limit` in
  their plain valid forms (`limit=100`, not `limit=+100` or `limit=1e2`);
- no request body announced (`content-length`, `transfer-encoding`: the body limit is the
  stack's), no query parameter given twice (the stack answers 422), and, where CORS is
  configured, no `Origin` (CORS answers are `CORSMiddleware`'s); not when OpenTelemetry is
  on (its spans wrap the stack).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from typing import Any, get_args

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from cryptopulse.api._auth import admitted_now, authorize_scope
from cryptopulse.api._cache import MarketBytes, market_bytes
from cryptopulse.api._hardening import API_LINES, api_headers, rate_headers, repeated_query_name
from cryptopulse.api.errors import error_response
from cryptopulse.api.middleware import observe, request_id_of, with_context
from cryptopulse.api.routers.market import (
    MAX_CANDLES,
    SCOPE,
    Interval,
    newest_page,
    source_label,
)
from cryptopulse.domain.instruments import InvalidInstrument, parse_instrument
from cryptopulse.runtime import Services
from cryptopulse.security.ratelimit import RateDecision
from cryptopulse.settings import Settings

__all__ = ["HotPath", "newest_page_query"]

try:  # the class of the `send` uvicorn's httptools protocol hands the app (`_send_whole`)
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _CYCLE
except ImportError:  # pragma: no cover - httptools is a dependency of ours
    _CYCLE = None  # type: ignore[assignment,misc]

# What `_write_raw` does in place of uvicorn's `send` touches these attributes of its
# cycle; if a uvicorn's `send` no longer uses all of them, its cycle has changed under us
# and the answers go through `send` (buffered) instead.
_CYCLE_STATE = frozenset(
    {
        "access_log",
        "chunked_encoding",
        "default_headers",
        "disconnected",
        "expected_content_length",
        "flow",
        "keep_alive",
        "message_event",
        "on_response",
        "response_complete",
        "response_started",
        "transport",
        "waiting_for_100_continue",
    }
)
_RAW = _CYCLE is not None and _CYCLE_STATE <= set(_CYCLE.send.__code__.co_names)
_STATUS_200 = b"HTTP/1.1 200 OK\r\n"

_TICKERS = "/v1/tickers/"
_CANDLES = "/v1/candles/"
# Latency histogram labels: the declared routes' templates.
_TICKER_ROUTE = _TICKERS + "{instrument}"
_CANDLES_ROUTE = _CANDLES + "{instrument}"
_INTERVALS = frozenset(get_args(Interval))
_LIMIT = re.compile(rb"[1-9][0-9]{0,3}")
_JSON = (b"content-type", b"application/json")
# A 200's header lines after uvicorn's defaults, in the order `_headers` gives them
# (content length, type, `API_LINES`, the rate limit's, the request id and API version).
_LINES = (
    b"content-length: %d\r\ncontent-type: application/json\r\n%b%b"
    b"x-request-id: %b\r\napi-version: 1\r\n"
)
_SCOPES = (SCOPE,)
# Headers that send a request to the stack: a body to limit, a cross-origin caller.
_BODY = frozenset({b"content-length", b"transfer-encoding"})

# (route template, instrument, the bytes of the ticker or of a fresh cached candle page,
# or a candle page's (interval, limit) to get through `newest_page`)
Matched = tuple[str, str, bytes | tuple[str, int]]


@functools.lru_cache(maxsize=256)  # the few query strings a reader sends, over and over
def newest_page_query(query: bytes) -> tuple[str, int] | None:
    """(interval, limit) of a plain newest-page query string, else None (0.9 µs to parse,
    0.1 from the cache)."""
    interval, limit = "1m", 100
    if not query:
        return interval, limit
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"interval" and value.decode("latin-1") in _INTERVALS:
            interval = value.decode()
        elif name == b"limit" and _LIMIT.fullmatch(value) and int(value) <= MAX_CANDLES:
            limit = int(value)
        else:
            return None
    return interval, limit


_CANONICAL: dict[str, bool] = {}  # live instrument names only: bounded by the market


def _canonical(name: str) -> bool:
    canonical = _CANONICAL.get(name)
    if canonical is None:
        try:
            canonical = str(parse_instrument(name)) == name
        except InvalidInstrument:
            canonical = False
        if len(_CANONICAL) < 100_000:
            _CANONICAL[name] = canonical
    return canonical


class HotPath:
    """Answers the hot requests of one app (see the module's docstring)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self._cors = bool(settings.cors_origins)
        self.enabled = not settings.otel_enabled
        self.answered = 0  # requests answered here (the tests count them)
        # The running services and their response caches, bound by the app's lifespan
        # when it sets `app.state.services` (a plain attribute: each read of the app's
        # Starlette `State` goes through its `__getattr__`, ~0.5 µs).
        self.services: Services | None = None
        self._cache: MarketBytes | None = None

    def bind(self, services: Services | None) -> None:
        """Answer with `services` from now on (None: send everything to the stack)."""
        self.services = services
        self._cache = None if services is None else market_bytes(self.app.state, services)

    def match(self, scope: Scope) -> Matched | None:
        """(route template, instrument, what to answer) for a request this path answers,
        else None. Cheap for any other request: a method and a path prefix test."""
        if scope["method"] != "GET" or not self.enabled:
            return None
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # as Starlette's routing reads it
            path = path[len(root) :]
        if path.startswith(_TICKERS):
            template, name = _TICKER_ROUTE, path[len(_TICKERS) :]
        elif path.startswith(_CANDLES):
            template, name = _CANDLES_ROUTE, path[len(_CANDLES) :]
        else:
            return None
        services, cache = self.services, self._cache
        if services is None or cache is None or not name or "/" in name:
            return None
        if not self._known(services, name):
            return None
        query: bytes = scope.get("query_string", b"")
        if b"&" in query and repeated_query_name(query) is not None:
            return None
        for header, _ in scope["headers"]:
            if header in _BODY or (self._cors and header == b"origin"):
                return None
        # The bytes as of the match: the request is answered with the ticker (the cached
        # page) of the moment it was routed, as the declared route's resolution would.
        if template is _TICKER_ROUTE:
            answer: bytes | tuple[str, int] | None = cache.ticker(name)
        else:
            answer = newest_page_query(query)
            if answer is not None:  # a fresh page answers without an await, as a ticker
                page = cache.fresh_page((name, *answer), source_label(services, name))
                answer = answer if page is None else page
        return None if answer is None else (template, name, answer)

    def _known(self, services: Services, name: str) -> bool:
        market = services.market
        return (name in market.sources or name in market.composites) and _canonical(name)

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        template: str,
        name: str,
        answer: bytes | tuple[str, int],
    ) -> None:
        """Answer a request `match` accepted, as the stack would: `answer` is the bytes to
        answer with (a ticker, a fresh cached page) or a candle page's (interval, limit)."""
        self.answered += 1
        rid = request_id_of(scope)
        started = time.perf_counter()
        status = 500
        try:
            try:
                services = self.services
                assert services is not None  # `match` saw it bound
                decision = admitted_now(services.access, scope, _SCOPES)
                if decision is None:  # a credential to verify, or a limiter on Redis
                    await authorize_scope(self.app, scope, _SCOPES)
                    decision = scope["state"]["ratelimit"]
                if isinstance(answer, bytes):
                    body = answer
                else:
                    body = await newest_page(services, self.app.state, name, *answer)
            except Exception as exc:
                response = await error_response(Request(scope), exc)
                status = response.status_code
                await response(scope, receive, _adding_headers(scope, send, rid))
                return
            status = 200
            await _send_whole(send, scope, rid, decision, body)
        finally:
            observe("GET", template, status, time.perf_counter() - started)


def _headers(
    scope: Scope, given: Iterable[tuple[bytes, bytes]], rid: bytes
) -> list[tuple[bytes, bytes]]:
    """`given` with what the stack's middleware adds: security and rate-limit headers,
    the request id and the API version."""
    return with_context(api_headers(given, rate_headers(scope)), rid)


async def _send_whole(
    send: Send, scope: Scope, rid: bytes, decision: RateDecision, body: bytes
) -> None:
    """A 200 with `headers` and `body`, written to the socket at once under uvicorn's
    httptools protocol (what `serve` runs).

    uvicorn writes the status line and headers as soon as it gets `http.response.start`,
    then the body: two socket writes, and on loopback or a fast link two segments that the
    client's kernel takes one at a time. For a small answer the first write was most of
    the request's cost under load (docs/benchmarks.md, "Stop 16"), and checking and
    lower-casing each of our 18 headers most of the rest ("Stop 17"). So under that
    protocol, without its access log (serve's default), `_write_raw` does what `send`
    does for this answer in one write, its header lines rendered in one piece
    (`_LINES`); with the access log, uvicorn's own `send` writes into a buffer flushed
    once. Any other server, or a uvicorn whose cycle is not that class, gets the two
    messages as they are.
    """
    cycle = getattr(send, "__self__", None)
    if _RAW and type(cycle) is _CYCLE and not cycle.access_log and not cycle.response_started:
        lines = _LINES % (len(body), API_LINES, decision.header_lines(), rid)
        await _write_raw(cycle, lines, body)
        return
    headers = _headers(scope, [(b"content-length", b"%d" % len(body)), _JSON], rid)
    if _CYCLE is None or type(cycle) is not _CYCLE:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    else:
        await _send_buffered(cycle, send, headers, body)


async def _write_raw(cycle: Any, lines: bytes, body: bytes) -> None:
    """uvicorn's httptools `send` of a 200 with our header `lines` and `body`, both
    messages, in one socket write. The same bytes (tests/api/test_hot.py compares them)
    and the same cycle state: flow control, a client gone, uvicorn's default headers,
    `connection: close` and the close when the connection is not kept alive, the
    completion that starts a pipelined request. What it leaves out is `send`'s check of
    each header name and value: ours are constants, numbers, and a request id that is
    printable or ours."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    parts = [_STATUS_200]
    parts.extend([b"%s: %s\r\n" % header for header in cycle.default_headers])
    parts.append(lines)
    keep_alive = cycle.keep_alive
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    cycle.chunked_encoding = False  # a content-length, all of it sent
    cycle.expected_content_length = 0
    cycle.transport.write(b"".join(parts))
    cycle.response_complete = True
    cycle.message_event.set()
    if not keep_alive:
        cycle.transport.close()
    cycle.on_response()


async def _send_buffered(
    cycle: Any, send: Send, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """uvicorn's own `send`, its cycle writing into a buffer flushed once at the end."""
    transport = cycle.transport
    buffered = _Buffered(transport)
    cycle.transport = buffered  # a transport in all it is used for
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    finally:
        cycle.transport = transport
        buffered.flush()


class _Buffered:
    """A transport whose writes wait for `flush` (or for any other use of it)."""

    __slots__ = ("_parts", "_transport")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        # close(), is_closing(), ...: what was written goes first, in order.
        self.flush()
        return getattr(self._transport, name)


def _adding_headers(scope: Scope, send: Send, rid: bytes) -> Send:
    """`send` adding what the stack's middleware adds to an error response."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = _headers(scope, message.get("headers", ()), rid)
        await send(message)

    return sending
