"""The app factory. Nothing connects at import time; the lifespan owns the services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from cryptopulse import __version__, web
from cryptopulse.api import errors
from cryptopulse.api._hardening import CORS_EXPOSED, SecurityHeadersMiddleware
from cryptopulse.api._hot import HotPath
from cryptopulse.api.middleware import RequestContextMiddleware
from cryptopulse.api.routers import (
    admin,
    alerts,
    auth,
    grades,
    health,
    indicators,
    market,
    onchain,
    predictions,
    sectors,
    signals,
    webhooks,
)
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings

DESCRIPTION = """
Self-hosted crypto market data: live trades, tickers and candles from Coinbase, Binance and
Kraken (or the built-in simulator, labelled `simulated`), over REST and a resumable WebSocket
stream at `/v1/stream`. Errors are RFC 9457 problem details.
"""


class CryptopulseApp(FastAPI):
    """FastAPI, with the WebSocket stream and the hottest GETs dispatched ahead of the
    middleware stack.

    Every middleware of ours (and Starlette's) passes WebSocket scopes straight through,
    but each level, the router and FastAPI's dependency wrappers keep a coroutine frame
    for the connection's whole life: ~26 coroutines and ~240 tracked objects per open
    stream connection, all walked by every full garbage collection. `/v1/stream` needs
    none of them (it takes its services from the app and authenticates in-band).
    """

    stream_session: ASGIApp | None = None
    hot: HotPath | None = None  # the hottest GETs, answered ahead of the stack (`_hot.py`)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hot = self.hot
            matched = hot.match(scope) if hot is not None else None
            if matched is not None:
                assert hot is not None
                scope["app"] = self
                await hot(scope, receive, send, *matched)
                return
            await super().__call__(scope, receive, send)
            return
        session = self.stream_session
        if session is not None and scope["type"] == "websocket":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):  # as Starlette's routing reads it
                path = path[len(root) :]
            if path == "/v1/stream":
                scope["app"] = self
                await session(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    services_factory: Callable[[Settings], Services] | None = None,
    *,
    migrate: bool = True,
) -> FastAPI:
    """Build the API. `services_factory` lets callers choose the sources (tests, CLI)."""
    settings = settings or Settings()
    factory = services_factory or Services.create

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = factory(settings)
        app.state.services = services
        hot: HotPath | None = getattr(app, "hot", None)
        if hot is not None:
            hot.bind(services)
        await services.start(migrate=migrate)
        try:
            async with mcp_endpoint.run():  # the MCP transport's task group
                yield
        finally:
            if hot is not None:
                hot.bind(None)
            await services.stop()

    app = CryptopulseApp(
        title="cryptopulse",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        telemetry={
            "tracing": settings.otel_enabled,
            "metrics": settings.otel_enabled,
            "logs": settings.otel_enabled,
        },
    )
    app.state.settings = settings
    errors.install(app)
    # Innermost first: unexpected errors as problems, security headers and body limit, CORS,
    # then request ids outermost.
    app.add_middleware(errors.UnhandledErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, max_body_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    app.include_router(market.router)
    app.hot = HotPath(app, settings)  # answers the plain shapes of two of market's routes
    app.include_router(onchain.router)
    for analytics_router in (indicators, signals, grades, sectors):
        app.include_router(analytics_router.router)
    app.include_router(predictions.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(alerts.router)
    app.include_router(webhooks.router)
    from cryptopulse.agents import McpEndpoint  # noqa: PLC0415  (import cycle guard)
    from cryptopulse.api import stream  # noqa: PLC0415  (import cycle guard)

    mcp_endpoint = McpEndpoint(app)  # MCP tools for AI agents at /mcp (docs/mcp.md)
    app.router.routes.append(mcp_endpoint.route())

    app.stream_session = stream.session  # dispatched by CryptopulseApp itself
    web.install(app)  # the dashboard at `/`, its assets at `/assets/`
    return app
