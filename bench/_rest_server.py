"""The server side of `bench/rest.py`: our app plus its two baselines, in one process.

    python -m bench._rest_server PORT KEY_FILE DB_PATH

- ``/v1/tickers/{i}``, ``/v1/candles/{i}?limit=100``: the real routes, behind auth (a
  key of a plan whose limits are high enough that no request gets a 429, so the rate
  limiter runs its full path on every request), answered as ``serve`` answers them: ahead
  of the middleware stack, with its headers (``api/_hot.py``);
- ``/ceiling/ticker``, ``/ceiling/candles``: the ceiling, a Starlette app of its own (its
  default middleware and router, nothing of ours) with routes returning the bytes our
  routes returned at startup, pre-built, on the same server (a dispatcher in front of both
  apps sends ``/ceiling/`` to it: one path test, paid by every contender alike);
  ``/ceiling/ticker-headers``, ``/ceiling/candles-headers``: the same, sending the 16
  headers ours sent besides content-length and content-type (security, rate limit, request
  id, API version), pre-built;
- ``/bare/ticker``, ``/bare/candles``: the same bare routes placed first in our app's
  route list, behind its middleware stack (which our hot routes skip: ``api/_hot.py``);
- ``/peer/tickers/{i}``, ``/peer/candles/{i}``: straightforward FastAPI routes with a
  pydantic ``response_model``, building the model per request (the typical peer), no auth.

Startup seeds 200 minutes of trades on coinbase:BTC-USD through the real pipeline and
store, writes the key to KEY_FILE, then serves under uvicorn (uvloop, httptools).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import uvloop
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bench._measure import app_server
from cryptopulse.api import create_app
from cryptopulse.api.schemas import CandleOut, CandlePage, TickerOut
from cryptopulse.domain.models import Trade
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.settings import Settings

INSTRUMENT = "coinbase:BTC-USD"
T0 = 1_700_000_040_000
_UNLIMITED = {
    "rpm": 10**9,
    "burst": 10**9,
    "ws_connections": 10,
    "subscriptions": 10,
    "ws_messages_per_s": 10,
    "alert_rules": 0,
    "webhooks": 0,
    "monthly_quota": 10**12,
}


async def _seed(app: FastAPI) -> str:
    services: Services = app.state.services
    services.market.note_instrument(INSTRUMENT, "replay")
    for i in range(200 * 6):  # a trade every 10 s for 200 minutes: 200 closed 1m candles
        trade = Trade(INSTRUMENT, str(i), 30_000.0 + (i % 37), 0.5, "buy", T0 + i * 10_000, T0)
        await services.pipeline.on_trade(trade)
    services.pipeline.flush_open()
    await services.writer.flush()
    new = await create_key(
        services.access.db,
        account="bench",
        name="bench key",
        scopes=["market:read"],
        plan="bench",
        plans=set(services.access.plans),
        actor="bench",
    )
    return new.key


def _add_baselines(app: FastAPI, ticker: bytes, candles: bytes) -> None:
    async def bare_ticker(request: Request) -> Response:
        return Response(ticker, media_type="application/json")

    async def bare_candles(request: Request) -> Response:
        return Response(candles, media_type="application/json")

    app.router.routes.insert(0, Route("/bare/ticker", bare_ticker))
    app.router.routes.insert(0, Route("/bare/candles", bare_candles))
    services: Services = app.state.services

    @app.get("/peer/tickers/{instrument}", response_model=TickerOut)
    async def peer_ticker(instrument: str) -> TickerOut:
        t = services.market.tickers[instrument]
        return TickerOut(
            instrument=t.instrument,
            bid=t.bid,
            ask=t.ask,
            last=t.last,
            bid_size=t.bid_size,
            ask_size=t.ask_size,
            volume_24h=t.volume_24h,
            time=t.time,
            received=t.received,
            source=services.market.source_of(instrument),
        )

    @app.get("/peer/candles/{instrument}", response_model=CandlePage)
    async def peer_candles(instrument: str, limit: int = 100) -> CandlePage:
        rows = await services.store.get_candles(
            instrument, "1m", start=None, end=None, limit=limit, descending=True
        )
        rows.reverse()
        return CandlePage(
            instrument=instrument,
            interval="1m",
            source=services.market.source_of(instrument),
            data=[
                CandleOut(
                    open_time=c.open_time,
                    open=c.open,
                    high=c.high,
                    low=c.low,
                    close=c.close,
                    volume=c.volume,
                    quote_volume=c.quote_volume,
                    trades=c.trades,
                    closed=c.closed,
                )
                for c in rows
            ],
            next_cursor=None,
        )


async def serve(port: int, key_file: Path, db: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        source="sim",
        bootstrap_key=False,
        plans={"bench": _UNLIMITED},
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        key = await _seed(app)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            ticker = await client.get(f"/v1/tickers/{INSTRUMENT}", headers=headers)
            candles = await client.get(f"/v1/candles/{INSTRUMENT}?limit=100", headers=headers)
        assert ticker.status_code == candles.status_code == 200
        _add_baselines(app, ticker.content, candles.content)
        key_file.write_text(key)
        await app_server(_Dispatch(app, _ceiling(ticker, candles)), port).serve()


def _ceiling(ticker: httpx.Response, candles: httpx.Response) -> Starlette:
    """The bare Starlette app: each body as is, and again with the headers our route sent
    with it (ours send 18; how much of the gap to the ceiling is the headers' cost)."""

    def route(path: str, reply: httpx.Response, with_ours: bool) -> Route:
        body = reply.content
        # Starlette adds content-length and content-type itself.
        ours = {k: v for k, v in reply.headers.items() if k not in _OWN} if with_ours else None

        async def bare(request: Request) -> Response:
            return Response(body, media_type="application/json", headers=ours)

        return Route(path, bare)

    routes = [
        route("/ceiling/ticker", ticker, False),
        route("/ceiling/candles", candles, False),
        route("/ceiling/ticker-headers", ticker, True),
        route("/ceiling/candles-headers", candles, True),
    ]
    return Starlette(routes=routes)


_OWN = frozenset({"content-length", "content-type"})


class _Dispatch:
    """`/ceiling/...` to the bare Starlette app, anything else to ours."""

    def __init__(self, app: FastAPI, ceiling: Starlette) -> None:
        self.app, self.ceiling = app, ceiling
        self.state = app.state  # app_server reads the app's settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/ceiling/"):
            await self.ceiling(scope, receive, send)
        else:
            await self.app(scope, receive, send)


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
