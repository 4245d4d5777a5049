"""The hot requests answered ahead of the middleware stack (`api/_hot.py`) and their
cached bytes (`api/_cache.py`): answers identical to the declared routes', the same errors
and limits, bytes rebuilt when the data changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy.exc
from authkit import done_without_io, http, make_key, make_settings, on_loopback, running
from fastapi import FastAPI

from cryptopulse.api import _cache, _hot
from cryptopulse.api._hot import HotPath, newest_page_query
from cryptopulse.domain.models import Candle, Ticker, Trade
from cryptopulse.runtime import Services

T0 = 1_700_000_040_000  # a minute boundary
TICKER = "/v1/tickers/coinbase:BTC-USD"
CANDLES = "/v1/candles/coinbase:BTC-USD"
# Headers whose values differ between two requests by design.
VARYING = {"x-request-id", "ratelimit", "ratelimit-remaining", "x-ratelimit-remaining"}
VARYING |= {"x-ratelimit-reset", "ratelimit-reset"}


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def feed(app: FastAPI, trades: list[Trade]) -> None:
    services = services_of(app)
    for trade in trades:
        services.market.note_instrument(trade.instrument, "replay")
        await services.pipeline.on_trade(trade)
    await settle(services)


async def settle(services: Services) -> None:
    """What the service's timers do: publish the changed open candles (every
    `candle_update_ms`), then write the batch (every `store_flush_interval_s`)."""
    await services.pipeline.publish_updates()
    await services.writer.flush()


def trade(i: int, price: float, minute: int | None = None) -> Trade:
    at = T0 + (i if minute is None else minute) * 60_000 + 5
    return Trade("coinbase:BTC-USD", str(i), price, 1.0, "buy", at, at + 1)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running(make_settings(tmp_path)) as app:
        await feed(app, [trade(i, 100.0 + i) for i in range(6)])
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http(app, await make_key(app)) as client:
        yield client


class Answered:
    """How many requests the app's hot path has answered since this was made."""

    def __init__(self, app: FastAPI) -> None:
        self.hot: HotPath = app.hot  # type: ignore[attr-defined]
        self.start = self.hot.answered

    @property
    def count(self) -> int:
        return self.hot.answered - self.start


def same_answer(
    fast: httpx.Response, declared: httpx.Response, also_varying: frozenset[str] = frozenset()
) -> None:
    varying = VARYING | also_varying
    assert (fast.status_code, fast.content) == (declared.status_code, declared.content)
    assert {k: v for k, v in fast.headers.items() if k not in varying} == {
        k: v for k, v in declared.headers.items() if k not in varying
    }


async def test_hot_answers_equal_the_declared_routes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    hot = Answered(app)
    # Shapes the hot path leaves to the declared routes: a non-canonical name, a query
    # parameter they do not know (ignored by the declared route), a padded limit.
    pairs = [
        (TICKER, "/v1/tickers/coinbase:btc-usd"),
        (TICKER, "/v1/tickers/COINBASE:BTC-USD"),
        ("/v1/tickers/BTC-USD", "/v1/tickers/btc-usd"),
        (CANDLES, CANDLES + "?x=1"),
        (CANDLES + "?limit=4", CANDLES + "?limit=04"),
        (CANDLES + "?interval=5m&limit=2", CANDLES + "?limit=2&interval=5m&x="),
        ("/v1/candles/BTC-USD?interval=1m", "/v1/candles/BTC-USD?interval=1m&y=2"),
    ]
    for fast_path, declared_path in pairs:
        before = hot.count
        fast = await client.get(fast_path)
        assert hot.count == before + 1, fast_path
        declared = await client.get(declared_path)
        assert hot.count == before + 1, declared_path
        assert fast.status_code == 200, fast.text
        same_answer(fast, declared)
    body = (await client.get(CANDLES + "?limit=4")).json()
    assert [c["close"] for c in body["data"]] == [102.0, 103.0, 104.0, 105.0]
    assert body["next_cursor"] is not None


async def test_hot_answers_keep_auth_scopes_and_limits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, plans={"b": {"rpm": 1000, "burst": 3}})
    async with running(settings) as app:
        await feed(app, [trade(0, 100.0)])
        hot = Answered(app)
        no_scope = await make_key(app, scopes=["signals:read"])
        limited = await make_key(app, plan="b")
        async with http(app) as anonymous:
            missing = await anonymous.get(TICKER)
            bad = await anonymous.get(TICKER, headers={"X-API-Key": "cpk_live_" + "A" * 50})
        async with http(app, no_scope) as client:
            forbidden = await client.get(CANDLES)
        async with http(app, limited) as client:
            replies = await asyncio.gather(*(client.get(TICKER) for _ in range(5)))
        assert hot.count == 8
    assert missing.status_code == 401 and missing.headers["www-authenticate"]
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]
    assert forbidden.status_code == 403 and "market:read" in forbidden.json()["detail"]
    for reply in (missing, bad, forbidden):
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["request_id"] == reply.headers["x-request-id"]
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 200, 429, 429]
    ok = next(r for r in replies if r.status_code == 200)
    assert ok.headers["ratelimit-policy"] == '"minute";q=1000;w=60, "burst";q=3;w=1'
    assert ok.headers["x-ratelimit-limit"] == "1000" and ok.headers["cache-control"] == "no-store"
    assert next(r for r in replies if r.status_code == 429).headers["retry-after"]


async def test_ticker_bytes_follow_the_ticker(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = (await client.get(TICKER)).content
    cache = _cache.market_bytes(app.state, services_of(app))
    assert cache.ticker("coinbase:BTC-USD") is cache.ticker("coinbase:BTC-USD")  # built once
    assert cache.ticker("coinbase:BTC-USD") == first
    await services_of(app).pipeline.on_ticker(
        Ticker("coinbase:BTC-USD", 99.5, 100.5, None, 1.0, 2.0, None, T0 + 20, T0 + 25)
    )
    changed = (await client.get(TICKER)).json()
    assert changed["bid"] == 99.5 and changed["ask"] == 100.5
    services_of(app).market.note_instrument("coinbase:BTC-USD", "live")
    assert (await client.get(TICKER)).json()["source"] == "live"


async def test_candle_pages_follow_the_store(app: FastAPI, client: httpx.AsyncClient) -> None:
    page = (await client.get(CANDLES + "?limit=2")).json()
    assert [c["close"] for c in page["data"]] == [104.0, 105.0]
    # A trade in the open candle: invisible until its update is written, then at once.
    await services_of(app).pipeline.on_trade(trade(6, 106.5, minute=5))
    assert (await client.get(CANDLES + "?limit=2")).json() == page
    await settle(services_of(app))
    amended = (await client.get(CANDLES + "?limit=2")).json()
    assert amended["data"][-1]["close"] == 106.5 and amended["data"][-1]["trades"] == 2
    # Another process writing the store: seen within PAGE_MAX_AGE_S.
    other = Candle("coinbase:BTC-USD", "1m", T0 + 6 * 60_000, 1, 2, 0.5, 1.5, 3, 4.5, 1, False)
    await services_of(app).store.upsert_candles([other])
    await asyncio.sleep(_cache.PAGE_MAX_AGE_S + 0.05)
    assert (await client.get(CANDLES + "?limit=2")).json()["data"][-1]["close"] == 1.5


async def test_a_page_outlives_other_series_writes(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Only a flush of the page's own series (instrument and interval) invalidates it."""
    services = services_of(app)
    page = (await client.get(CANDLES + "?limit=2")).content
    reads = count_reads(services)
    other = Trade("coinbase:ETH-USD", "e1", 50.0, 1.0, "buy", T0 + 5 * 60_000 + 5, T0 + 1)
    await feed(app, [other])  # ETH-USD's candles flushed; BTC-USD's page stays
    assert (await client.get(CANDLES + "?limit=2")).content == page
    assert reads == [0]
    await services.pipeline.on_trade(trade(7, 107.0, minute=5))
    await settle(services)  # BTC-USD's 1m series flushed: its page is read again
    assert (await client.get(CANDLES + "?limit=2")).json()["data"][-1]["close"] == 107.0
    assert reads == [1]


async def test_a_page_in_use_is_rebuilt_ahead_of_its_age_bound(app: FastAPI) -> None:
    cache = _cache.market_bytes(app.state, services_of(app))
    key = ("coinbase:BTC-USD", "1m", 5)
    builds: list[bytes] = []

    async def build() -> bytes:
        builds.append(b"page %d" % len(builds))
        await asyncio.sleep(0.01)  # a store read takes a while
        return builds[-1]

    assert await cache.page(key, "replay", build) == b"page 0"
    # Half the age bound on, a request is answered at once, from the page it has, and
    # the page is built again behind it.
    await asyncio.sleep(_cache.PAGE_MAX_AGE_S * 0.6)
    assert done_without_io(cache.page(key, "replay", build)) == b"page 0"
    await asyncio.sleep(0.05)
    assert builds == [b"page 0", b"page 1"]
    # Past the first build's age bound, still no wait: the rebuilt page serves.
    await asyncio.sleep(_cache.PAGE_MAX_AGE_S * 0.5)
    assert done_without_io(cache.page(key, "replay", build)) == b"page 1"


async def test_a_fresh_page_is_answered_without_an_await_until_its_refresh(
    app: FastAPI,
) -> None:
    """`fresh_page` (what the hot path answers from at once) is the page `page` would
    answer with and start nothing for; else None, and the request goes through `page`."""
    services = services_of(app)
    cache = _cache.market_bytes(app.state, services)
    key = ("coinbase:BTC-USD", "1m", 5)
    builds: list[bytes] = []

    async def build() -> bytes:
        builds.append(b"page %d" % len(builds))
        return builds[-1]

    assert cache.fresh_page(key, "replay") is None  # nothing cached yet
    assert await cache.page(key, "replay", build) == b"page 0"
    assert cache.fresh_page(key, "replay") == b"page 0"
    assert cache.fresh_page(key, "sim") is None  # the instrument's source changed
    assert cache.fresh_page(("coinbase:BTC-USD", "1m", 6), "replay") is None
    await asyncio.sleep(_cache.PAGE_MAX_AGE_S * 0.6)
    assert cache.fresh_page(key, "replay") is None  # due for its refresh ahead
    assert done_without_io(cache.page(key, "replay", build)) == b"page 0"  # starts it
    await asyncio.sleep(0.05)
    assert cache.fresh_page(key, "replay") == b"page 1"
    await services.pipeline.on_trade(trade(7, 107.0, minute=5))
    await settle(services)  # the page's own series was written: not current any more
    assert cache.fresh_page(key, "replay") is None
    assert builds == [b"page 0", b"page 1"]


def count_reads(services: Services) -> list[int]:
    """A counter of the store's candle reads from now on."""
    store = services.store
    reads = [0]
    original = store.get_candles

    async def counting(*args: object, **kwargs: object) -> list[Candle]:
        reads[0] += 1
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    store.get_candles = counting  # type: ignore[method-assign]
    return reads


async def test_one_store_read_for_concurrent_misses(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    reads = count_reads(services_of(app))
    replies = await asyncio.gather(*(client.get(CANDLES + "?limit=3") for _ in range(20)))
    assert {r.status_code for r in replies} == {200} and len({r.content for r in replies}) == 1
    assert reads == [1]


async def test_pages_are_bounded(app: FastAPI, client: httpx.AsyncClient) -> None:
    for limit in range(1, 40):
        assert (await client.get(f"{CANDLES}?limit={limit}")).status_code == 200
    cache = _cache.market_bytes(app.state, services_of(app))
    assert len(cache._pages) == 39
    original = _cache.MAX_PAGES
    _cache.MAX_PAGES = 10
    try:
        for limit in range(40, 60):
            await client.get(f"{CANDLES}?limit={limit}")
    finally:
        _cache.MAX_PAGES = original
    assert len(cache._pages) <= 10


@pytest.mark.parametrize(
    ("query", "shape"),
    [
        (b"", ("1m", 100)),
        (b"interval=5m", ("5m", 100)),
        (b"limit=1000&interval=1d", ("1d", 1000)),
        (b"limit=1001", None),
        (b"limit=0", None),
        (b"limit=+5", None),
        (b"limit=1e2", None),
        (b"interval=7m", None),
        (b"interval=1%6D", None),
        (b"start=1", None),
        (b"cursor=abc", None),
        (b"limit=5&", None),
    ],
)
def test_newest_page_query(query: bytes, shape: tuple[str, int] | None) -> None:
    assert newest_page_query(query) == shape


async def test_revoked_key_is_refused_at_once_in_this_process(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        await feed(app, [trade(0, 100.0)])
        admin = await make_key(app, scopes=["market:read", "admin"])
        key = await make_key(app)
        key_id = key[9:21]
        async with http(app, key) as client, http(app, admin) as operator:
            assert (await client.get(TICKER)).status_code == 200
            assert (await operator.delete(f"/v1/admin/keys/{key_id}")).status_code == 200
            refused = await client.get(TICKER)  # no wait for key_cache_ttl_s
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            rotated = (
                await operator.post(
                    "/v1/admin/keys/" + admin[9:21] + "/rotate", json={"grace_s": 0}
                )
            ).json()["key"]
            assert (await operator.get(TICKER)).status_code == 401
            assert (
                await operator.get(TICKER, headers={"Authorization": f"Bearer {rotated}"})
            ).status_code == 200


async def test_the_lifespan_binds_the_services_to_the_hot_path(tmp_path: Path) -> None:
    """The hot path answers with the services of the running lifespan only: bound when the
    lifespan sets `app.state.services`, unbound when it ends (the stack answers then), and
    bound again to the new services of a second lifespan."""
    settings = make_settings(tmp_path)
    scope = {"type": "http", "method": "GET", "path": TICKER, "headers": [], "query_string": b""}
    async with running(settings) as app:
        hot: HotPath = app.hot  # type: ignore[attr-defined]
        first = services_of(app)
        assert hot.services is first
        await feed(app, [trade(1, 100.0)])
        assert hot.match(scope) is not None
    assert hot.services is None and hot.match(scope) is None
    async with app.router.lifespan_context(app):  # the same app started again
        assert hot.services is services_of(app) is not first
        assert _cache.market_bytes(app.state, services_of(app)) is hot._cache


async def with_and_without_hot(
    app: FastAPI, client: httpx.AsyncClient, path: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The same request answered by the hot path, then by the stack and the declared route
    (the hot path off). A fixed request id: problem documents carry it."""
    hot = Answered(app)
    headers = {"X-Request-ID": "same-request", **kwargs.pop("headers", {})}
    first = await client.get(path, headers=headers, **kwargs)
    assert hot.count == 1, path
    hot.hot.enabled = False
    try:
        second = await client.get(path, headers=headers, **kwargs)
    finally:
        hot.hot.enabled = True
    assert hot.count == 1, path
    return first, second


async def test_hot_errors_equal_the_stacks(tmp_path: Path) -> None:
    """401, 403, 429 (rate and quota) and a store outage's 503: the same problem document
    and headers from the hot path as from the stack's exception handlers."""
    plans = {"slow": {"rpm": 2, "burst": 2}, "tiny": {"monthly_quota": 1}}
    async with running(make_settings(tmp_path, plans=plans)) as app:
        await feed(app, [trade(0, 100.0)])
        no_scope = await make_key(app, scopes=["signals:read"])
        slow = await make_key(app, plan="slow")
        tiny = await make_key(app, plan="tiny")
        cases: list[tuple[str | None, dict[str, str], int]] = [
            (None, {}, 401),
            (None, {"X-API-Key": "cpk_live_" + "A" * 50}, 401),
            (None, {"Authorization": "Bearer not.a.token"}, 401),
            (no_scope, {}, 403),
        ]
        for key, headers, status in cases:
            async with http(app, key) as client:
                for path in (TICKER, CANDLES + "?limit=3"):
                    hot, stack = await with_and_without_hot(app, client, path, headers=headers)
                    assert hot.status_code == status, (path, hot.text)
                    assert hot.json()["request_id"] == "same-request"
                    same_answer(hot, stack)
        async with http(app, slow) as client:
            await client.get(TICKER)
            await client.get(TICKER)  # the plan's 2 a minute spent
            hot, stack = await with_and_without_hot(app, client, TICKER)
            assert hot.status_code == 429 and hot.headers["retry-after"]
            assert hot.headers["x-ratelimit-remaining"] == "0"
            same_answer(hot, stack, also_varying={"retry-after"})
        async with http(app, tiny) as client:
            assert (await client.get(TICKER)).status_code == 200
            services_of(app).access.usage.count(tiny[9:21])  # over the quota of 1
            hot, stack = await with_and_without_hot(app, client, TICKER)
            assert hot.status_code == 429 and "quota" in hot.json()["detail"]
            same_answer(hot, stack, also_varying={"retry-after"})
        async with http(app, await make_key(app)) as client:
            store = services_of(app).store

            async def down(*args: object, **kwargs: object) -> list[Candle]:
                raise sqlalchemy.exc.OperationalError("SELECT", {}, ConnectionError("gone"))

            store.get_candles = down  # type: ignore[method-assign]
            hot, stack = await with_and_without_hot(app, client, CANDLES + "?limit=7")
            assert hot.status_code == 503 and hot.headers["retry-after"] == "2"
            assert hot.headers["ratelimit-policy"]  # admitted before the store failed
            same_answer(hot, stack)


async def test_what_the_hot_path_leaves_to_the_stack(tmp_path: Path) -> None:
    """A body, a repeated parameter, another method, a cross-origin call when CORS is on:
    the stack answers them (its body limit, its 422, its 405, CORSMiddleware)."""
    origin = "https://dash.example"
    async with running(make_settings(tmp_path, cors_origins=[origin])) as app:
        await feed(app, [trade(0, 100.0)])
        hot = Answered(app)
        async with http(app, await make_key(app)) as client:
            cross = await client.get(TICKER, headers={"Origin": origin})
            with_body = await client.request("GET", TICKER, content=b"x" * 10)
            repeated = await client.get(CANDLES + "?limit=2&limit=3")
            head = await client.head(TICKER)
            assert hot.count == 0
            assert (await client.get(TICKER)).status_code == 200
            assert hot.count == 1
    assert cross.status_code == 200 and cross.headers["access-control-allow-origin"] == origin
    assert with_body.status_code == 200 and with_body.json()["instrument"] == "coinbase:BTC-USD"
    assert repeated.status_code == 422 and repeated.json()["errors"][0]["field"] == "limit"
    assert head.status_code == 405


async def test_hot_answers_are_timed_by_route_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from cryptopulse.api.metrics import REGISTRY

    def count(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        value = REGISTRY.get_sample_value("cryptopulse_http_request_duration_seconds_count", labels)
        return value or 0.0

    before = count("/v1/tickers/{instrument}", "200"), count("/v1/candles/{instrument}", "401")
    hot = Answered(app)
    await client.get(TICKER)
    async with http(app) as anonymous:
        await anonymous.get(CANDLES)
    assert hot.count == 2
    after = count("/v1/tickers/{instrument}", "200"), count("/v1/candles/{instrument}", "401")
    assert after == (before[0] + 1, before[1] + 1)


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[httpx.Response]:
    """`count` HTTP/1.x responses (each with a Content-Length) from a raw connection."""
    replies = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = [tuple(line.split(": ", 1)) for line in lines]
        length = int(dict((k.lower(), v) for k, v in headers)["content-length"])
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        replies.append(httpx.Response(int(status_line.split()[1]), headers=headers, content=body))
    return replies


class Recording:
    """A transport that records what is written to it (anything else goes through)."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@pytest.mark.parametrize(
    ("http_impl", "access_log"), [("httptools", False), ("httptools", True), ("h11", False)]
)
async def test_hot_answers_over_a_real_server(
    app: FastAPI, http_impl: str, access_log: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipelined keep-alive requests and an HTTP/1.0 one, under uvicorn's two protocols;
    under httptools (what `serve` runs) each hot answer reaches the socket in one write:
    written by `_write_raw` (no access log, serve's default) or buffered around uvicorn's
    own `send` (with the access log, which that `send` writes)."""
    buffered: list[bytes] = []
    raw: list[bytes] = []
    flush, write_raw = _hot._Buffered.flush, _hot._write_raw

    def counting(self: Any) -> None:
        buffered.extend(self._parts)  # what the one write will carry
        flush(self)

    async def recording(cycle: Any, headers: Any, body: bytes) -> None:
        transport = cycle.transport
        cycle.transport = Recording(transport, raw)
        try:
            await write_raw(cycle, headers, body)
        finally:
            cycle.transport = transport

    monkeypatch.setattr(_hot._Buffered, "flush", counting)
    monkeypatch.setattr(_hot, "_write_raw", recording)
    key = await make_key(app)
    hot = Answered(app)
    async with on_loopback(app, lifespan="off", http=http_impl, access_log=access_log) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET {{}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        paths = [TICKER, CANDLES + "?limit=3", TICKER, "/v1/instruments"]
        writer.write("".join(request.format(p) for p in paths).encode())
        replies = await read_responses(reader, len(paths))
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {TICKER} HTTP/1.0\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        [old] = await read_responses(reader, 1)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the answer
        writer.close()
    assert [r.status_code for r in replies] == [200, 200, 200, 200] and old.status_code == 200
    assert replies[0].json()["instrument"] == "coinbase:BTC-USD" == old.json()["instrument"]
    assert [c["close"] for c in replies[1].json()["data"]] == [103.0, 104.0, 105.0]
    assert all(r.headers["x-ratelimit-limit"] for r in replies)
    assert hot.count == 4  # the two tickers, the page, the HTTP/1.0 ticker
    if http_impl == "httptools" and not access_log:
        assert buffered == [] and len(raw) == hot.count  # one write each: head and body
        for whole in raw:
            assert whole.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n{" in whole
        assert raw[-1].endswith(old.content) and b"\r\nconnection: close\r\n" in raw[-1]
    elif http_impl == "httptools":
        assert raw == [] and len(buffered) == 2 * hot.count  # status and headers, then body
        for head, body in zip(buffered[::2], buffered[1::2], strict=True):
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
            assert body[:1] == b"{"
    else:
        assert raw == buffered == []  # another protocol's cycle: two messages, as always


async def raw_exchange(port: int, requests: list[bytes]) -> list[bytes]:
    """Each request on a connection of its own; what came back, to the server's close or
    the end of a Content-Length body."""
    answers = []
    for request in requests:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answers.append(head + await asyncio.wait_for(reader.readexactly(length), 5))
        writer.close()
    return answers


def normalized(answer: bytes) -> list[bytes]:
    """The answer's lines with the values that change from one request to the next (the
    date, the rate limit's counts and reset) blanked; order and case kept."""
    lines = []
    for line in answer.split(b"\r\n"):
        name, sep, _ = line.partition(b": ")
        if sep and (name == b"date" or b"ratelimit" in name):
            line = name + b": *"
        lines.append(line)
    return lines


async def test_raw_answers_equal_uvicorns_own_rendering(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_write_raw` writes the bytes uvicorn's `send` writes for the same answer: status
    line, uvicorn's default headers, ours in the same order and case, `connection: close`
    for HTTP/1.0, the body."""
    key = await make_key(app)
    auth = f"Authorization: Bearer {key}\r\nX-Request-ID: same-id\r\n"
    requests = [
        f"GET {TICKER} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode(),
        f"GET {CANDLES}?limit=2 HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode(),
        f"GET {TICKER} HTTP/1.0\r\n{auth}\r\n".encode(),
    ]
    hot = Answered(app)
    async with on_loopback(app, lifespan="off", access_log=False) as port:
        raw = await raw_exchange(port, requests)
        monkeypatch.setattr(_hot, "_RAW", False)
        through_send = await raw_exchange(port, requests)
    assert hot.count == 6
    assert [normalized(a) for a in raw] == [normalized(a) for a in through_send]
    assert b"\r\nconnection: close\r\n" in raw[2] and b"connection" not in raw[0].lower()
