"""`AsyncClient` over the real app in process (lifespan, SQLite store, access control)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.client import (
    ROUTES,
    AsyncClient,
    Client,
    Forbidden,
    NotFound,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    ValidationFailed,
)
from cryptopulse.domain.models import Trade
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.settings import Settings

T0 = 1_700_000_040_000
ALL_SCOPES = ["market:read", "signals:read", "alerts:write", "webhooks:write", "admin"]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/sdk.db",
        "source": "sim",
        "bootstrap_key": False,
        "jwt_secret": "sdk-test-secret-" + "x" * 40,
    }
    return Settings(**(values | overrides))


async def make_key(app: FastAPI, scopes: list[str], plan: str = "pro") -> str:
    services: Services = app.state.services
    new = await create_key(
        services.access.db,
        account="sdk",
        name="sdk test",
        scopes=scopes,
        plan=plan,
        plans=set(services.access.plans),
        actor="test",
    )
    return new.key


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(tmp_path, plans={"tiny": {"rpm": 1000, "burst": 1}})
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        yield app


class Counting(httpx.AsyncBaseTransport):
    """The app's ASGI transport, counting requests (to see retries happen)."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


def sdk(app: FastAPI, key: str | None, **options: Any) -> AsyncClient:
    return AsyncClient("http://test", key, transport=httpx.ASGITransport(app=app), **options)


async def feed(app: FastAPI, count: int) -> None:
    services: Services = app.state.services
    for i in range(count):
        trade = Trade("coinbase:BTC-USD", str(i), 100.0 + i, 0.5, "buy", T0 + i * 1000, T0 + i)
        services.market.note_instrument(trade.instrument, "replay")
        await services.pipeline.on_trade(trade)
    services.pipeline.flush_open()
    await services.writer.flush()


def test_every_rest_operation_in_the_openapi_document_has_a_client_method(tmp_path: Path) -> None:
    document = create_app(make_settings(tmp_path)).openapi()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations - set(ROUTES.values()) == set(), "REST operations without a client method"
    assert set(ROUTES.values()) - operations == set(), "client methods for missing routes"
    for name in ROUTES:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        assert callable(getattr(Client, name)) and not inspect.iscoroutinefunction(
            getattr(Client, name)
        ), name


async def test_typed_market_data_and_paging_by_cursor(app: FastAPI) -> None:
    await feed(app, 7)
    key = await make_key(app, ["market:read"])
    async with sdk(app, key) as client:
        names = [i.instrument for i in (await client.instruments()).data]
        assert "coinbase:BTC-USD" in names and "BTC-USD" in names
        ticker = await client.ticker("coinbase:BTC-USD")
        assert ticker.last == 106.0
        page = await client.trades("coinbase:BTC-USD", limit=3)
        assert [t.trade_id for t in page.data] == ["6", "5", "4"] and page.next_cursor
        every = [t.trade_id async for t in client.paginate(client.trades, "coinbase:BTC-USD",
                                                             limit=3)]  # fmt: skip
        assert every == [str(i) for i in range(6, -1, -1)]
        candles = await client.candles("coinbase:BTC-USD", interval="1m", start=0, limit=100)
        assert candles.data[0].open == 100.0 and candles.data[0].trades == 7


async def test_problem_details_become_typed_exceptions(app: FastAPI) -> None:
    key = await make_key(app, ["market:read"])
    async with sdk(app, key) as client:
        with pytest.raises(NotFound) as missing:
            await client.ticker("nowhere:FOO-BAR")
        assert missing.value.status == 404 and missing.value.request_id
        with pytest.raises(ValidationFailed) as invalid:
            await client.trades("coinbase:BTC-USD", limit=0)
        assert invalid.value.errors[0]["field"] == "limit"
        with pytest.raises(Forbidden):
            await client.grades()
    async with sdk(app, None) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.tickers()
    async with sdk(app, "cpk_live_" + "A" * 50) as wrong:
        with pytest.raises(Unauthorized):
            await wrong.tickers()


async def test_429_is_retried_after_retry_after_and_bounded(app: FastAPI) -> None:
    key = await make_key(app, ["market:read"], plan="tiny")  # 1 request per second
    transport = Counting(app)
    async with AsyncClient("http://test", key, transport=transport) as client:
        for _ in range(3):
            await client.tickers()
        assert 429 in transport.statuses and transport.statuses[-1] == 200
    impatient = AsyncClient(
        "http://test", key, transport=Counting(app), retry=RetryPolicy(max_wait_s=0)
    )
    async with impatient:
        with pytest.raises(RateLimited) as limited:
            for _ in range(3):
                await impatient.tickers()
        assert limited.value.retry_after is not None and limited.value.retry_after > 0


async def test_jwt_mode_exchanges_the_key_and_renews_the_token(app: FastAPI) -> None:
    key = await make_key(app, ["market:read", "signals:read"])
    async with sdk(app, key, use_jwt=True, scope="market:read") as client:
        me = await client.me()
        assert me.via == "jwt" and me.scopes == ["market:read"]
        first = client.credentials.token
        client.credentials.expires_at = 0  # as if it were about to expire
        await client.tickers()
        assert client.credentials.token != first


async def test_admin_keys_over_the_sdk(app: FastAPI) -> None:
    admin = await make_key(app, ALL_SCOPES)
    async with sdk(app, admin) as client:
        new = await client.create_key(name="bot", scopes=["market:read"], plan="pro")
        assert new.key.startswith("cpk_")
        assert new.key_id in {k.key_id for k in (await client.list_keys()).data}
        assert (await client.get_key(new.key_id)).name == "bot"
        rotated = await client.rotate_key(new.key_id, grace_s=0)
        assert rotated.key != new.key
        assert (await client.revoke_key(rotated.key_id)).revoked_at is not None
        assert (await client.audit(limit=10)).data
        assert (await client.usage(days=2)).key_id
        assert (await client.healthz()).status == "ok"
        assert "cryptopulse" in await client.metrics_text()


async def test_analytics_lists_are_typed(app: FastAPI) -> None:
    key = await make_key(app, ["market:read", "signals:read"])
    async with sdk(app, key) as client:
        assert (await client.signals()).data == []
        assert isinstance((await client.sectors()).data, list)
        tokens = await client.tokens(limit=5)
        assert tokens.data and tokens.data[0].symbol
        assert (await client.grades()).data == []
        assert (await client.chains()).data == []


async def test_alerts_and_webhooks_over_the_sdk(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, webhook_allow_private_targets=True)
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        key = await make_key(app, ["market:read", "alerts:write", "webhooks:write"])
        async with sdk(app, key) as client:
            hook = await client.create_webhook("http://127.0.0.1:9/hooks", "bot")
            assert hook.secret.startswith("whsec_")
            assert [w.id for w in await client.list_webhooks()] == [hook.id]
            rule = await client.create_alert(
                {"name": "btc 120", "kind": "price_cross",
                 "params": {"instrument": "coinbase:BTC-USD", "level": 120.0, "direction": "up"}}
            )  # fmt: skip
            assert rule.status == "active"
            assert (await client.pause_alert(rule.id)).status == "paused"
            assert (await client.update_alert(rule.id, {"name": "renamed"})).name == "renamed"
            assert [a.id for a in (await client.list_alerts()).data] == [rule.id]
            await client.delete_alert(rule.id)
            with pytest.raises(NotFound):
                await client.get_alert(rule.id)
            await client.delete_webhook(hook.id)
