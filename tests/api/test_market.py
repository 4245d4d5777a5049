"""REST market data over the real app (lifespan, SQLite store, pipeline) in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings

T0 = 1_700_000_040_000  # a minute boundary


def make_trade(
    trade_id: str, time: int, price: float, size: float = 1.0, instrument: str = "coinbase:BTC-USD"
) -> Trade:
    return Trade(instrument, trade_id, price, size, "sell", time, time + 3)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    # The public read-only plan: these tests are about market data, not credentials.
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db", source="sim", anonymous_plan="public"
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def feed(app: FastAPI, trades: list[Trade]) -> None:
    services: Services = app.state.services
    for trade in trades:
        services.market.note_instrument(trade.instrument, "replay")
        await services.pipeline.on_trade(trade)
    services.pipeline.flush_open()
    await services.writer.flush()


async def test_trades_keep_exchange_prices_sizes_sides_and_times(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await feed(app, [make_trade(str(i), T0 + i * 1000, 100.0 + i, 0.5 * i) for i in range(5)])
    response = await client.get("/v1/trades/coinbase:BTC-USD", params={"limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "replay"
    assert [t["trade_id"] for t in body["data"]] == ["4", "3", "2"]
    assert body["data"][0] == {
        "trade_id": "4",
        "price": 104.0,
        "size": 2.0,
        "side": "sell",
        "time": T0 + 4000,
        "received": T0 + 4003,
    }
    older = await client.get("/v1/trades/coinbase:BTC-USD", params={"cursor": body["next_cursor"]})
    assert [t["trade_id"] for t in older.json()["data"]] == ["1", "0"]
    assert older.json()["next_cursor"] is None


async def test_candles_page_forward_and_back(app: FastAPI, client: httpx.AsyncClient) -> None:
    # one trade per minute for ten minutes: ten 1m candles, the last still open
    await feed(app, [make_trade(str(i), T0 + i * 60_000 + 5, 10.0 + i) for i in range(10)])
    newest = (
        await client.get("/v1/candles/coinbase:BTC-USD", params={"interval": "1m", "limit": 4})
    ).json()
    assert [c["open_time"] for c in newest["data"]] == [T0 + i * 60_000 for i in range(6, 10)]
    assert newest["data"][-1]["closed"] is False and newest["data"][0]["closed"] is True
    back = (
        await client.get(
            "/v1/candles/coinbase:BTC-USD",
            params={"interval": "1m", "limit": 4, "cursor": newest["next_cursor"]},
        )
    ).json()
    assert [c["close"] for c in back["data"]] == [12.0, 13.0, 14.0, 15.0]
    forward = (
        await client.get(
            "/v1/candles/coinbase:BTC-USD", params={"interval": "1m", "start": T0, "limit": 6}
        )
    ).json()
    rest = (
        await client.get(
            "/v1/candles/coinbase:BTC-USD",
            params={"interval": "1m", "limit": 6, "cursor": forward["next_cursor"]},
        )
    ).json()
    assert len(forward["data"]) + len(rest["data"]) == 10
    assert rest["next_cursor"] is None
    composite = (await client.get("/v1/candles/BTC-USD", params={"interval": "5m"})).json()
    assert sum(c["trades"] for c in composite["data"]) == 10


async def test_tickers_venue_and_composite(app: FastAPI, client: httpx.AsyncClient) -> None:
    services: Services = app.state.services
    await feed(
        app,
        [
            make_trade("1", T0, 100.0, 1.0),
            make_trade("2", T0 + 10, 110.0, 3.0, instrument="kraken:BTC-USD"),
        ],
    )
    await services.pipeline.on_ticker(
        Ticker("coinbase:BTC-USD", 99.5, 100.5, None, 1.0, 2.0, None, T0 + 20, T0 + 25)
    )
    venue = (await client.get("/v1/tickers/coinbase:btc-usd")).json()
    assert venue["bid"] == 99.5 and venue["last"] == 100.0 and venue["source"] == "replay"
    composite = (await client.get("/v1/tickers/BTC-USD")).json()
    assert composite["last"] == pytest.approx((100.0 * 1 + 110.0 * 3) / 4)
    listing = (await client.get("/v1/tickers")).json()
    assert {t["instrument"] for t in listing["data"]} >= {"BTC-USD", "kraken:BTC-USD"}
    instruments = (await client.get("/v1/instruments")).json()["data"]
    names = {i["instrument"]: i for i in instruments}
    assert names["BTC-USD"]["composite"] is True and names["kraken:BTC-USD"]["exchange"] == "kraken"


@pytest.mark.parametrize(
    ("path", "params", "status", "fields"),
    [
        ("/v1/candles/coinbase:NOPE-USD", {}, 404, None),
        ("/v1/candles/not an instrument", {}, 404, None),
        ("/v1/candles/coinbase:BTC-USD", {"interval": "7m"}, 422, {"interval"}),
        ("/v1/candles/coinbase:BTC-USD", {"limit": "0", "start": "-1"}, 422, {"limit", "start"}),
        ("/v1/candles/coinbase:BTC-USD", {"start": "10", "end": "5"}, 422, {"start"}),
        ("/v1/candles/coinbase:BTC-USD", {"cursor": "!!"}, 422, {"cursor"}),
        ("/v1/candles/coinbase:BTC-USD", {"cursor": "eyJkIjoiYSJ9"}, 422, {"cursor"}),
        ("/v1/trades/BTC-USD", {}, 422, {"instrument"}),
        ("/v1/trades/coinbase:BTC-USD", {"limit": "abc"}, 422, {"limit"}),
        ("/v1/nothing-here", {}, 404, None),
    ],
)
async def test_bad_input_is_a_problem_document(
    app: FastAPI,
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    status: int,
    fields: set[str] | None,
) -> None:
    await feed(app, [make_trade("1", T0, 100.0)])
    response = await client.get(path, params=params, headers={"X-Request-ID": "req-42"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-42"
    problem = response.json()
    assert problem["status"] == status and problem["request_id"] == "req-42"
    assert problem["type"].startswith("https://") and problem["title"]
    assert "Traceback" not in response.text
    if fields is not None:
        assert {e["field"] for e in problem["errors"]} == fields


async def test_every_response_has_request_id_and_api_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert response.headers["api-version"] == "1"
    assert len(response.headers["x-request-id"]) == 32


async def test_readyz_reports_store_and_feeds(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    body = response.json()
    assert body["store"] is True and body["feeds"] == []
    assert response.status_code == 200


async def test_metrics_expose_route_templates_and_feeds(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await feed(app, [make_trade("1", T0, 100.0)])
    await client.get("/v1/trades/coinbase:BTC-USD")
    text = (await client.get("/metrics")).text
    assert 'route="/v1/trades/{instrument}"' in text
    assert "cryptopulse_pipeline_trades_total 1.0" in text


async def test_openapi_declares_models_and_problems(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    candles = spec["paths"]["/v1/candles/{instrument}"]["get"]
    assert "CandlePage" in str(candles["responses"]["200"])
    assert "application/problem+json" in candles["responses"]["422"]["content"]
    assert {"Problem", "CandlePage", "TickerOut", "Readiness"} <= set(spec["components"]["schemas"])
