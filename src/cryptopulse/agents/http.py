"""MCP over streamable HTTP at `/mcp`, inside the API app, with the caller's credential.

The endpoint checks the credential like any route (401 problem document without a valid
one), then each tool call goes through the app itself in process (`httpx.ASGITransport`)
with that same credential: scopes, plan limits and usage apply as on REST. Stateless JSON
mode: no session to pin to a replica, so it works behind a load balancer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cryptopulse.agents.tools import build_server
from cryptopulse.api._auth import principal_of
from cryptopulse.api.errors import ProblemError, problem_response
from cryptopulse.client import AsyncClient

__all__ = ["McpEndpoint", "credential_from"]

PATH = "/mcp"


def credential_from(headers: Mapping[str, str] | None) -> str | None:
    """The API key or JWT of `Authorization: Bearer` or `X-API-Key`."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    scheme, _, value = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return lowered.get("x-api-key") or None


class McpEndpoint:
    """The ASGI app of `/mcp`. `run()` must wrap the app's lifespan (it owns the MCP
    transport's task group); `route()` is what the app mounts."""

    def __init__(self, api: ASGIApp) -> None:
        self._api = api
        self.server = build_server(self._client_for)
        self._manager: StreamableHTTPSessionManager | None = None

    def route(self) -> Route:
        return Route(PATH, endpoint=self, include_in_schema=False)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run the MCP transport while the app runs. Its task group lives in a task of its
        own: a lifespan may be entered and left in different tasks (test fixtures do), which
        an anyio cancel scope does not allow."""
        # Bearer credentials, not cookies, guard this endpoint, so DNS rebinding gains an
        # attacker nothing; the SDK's localhost-only Host check would break deployments.
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager  # a new one per run: each runs only once
        started, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(hold(), name="mcp-transport")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            task.result()  # raises why it could not start
        self._manager = manager
        try:
            yield
        finally:
            self._manager = None
            stop.set()
            await task

    def _client_for(self, ctx: Context) -> AsyncClient:
        transport = httpx.ASGITransport(app=self._api)
        return AsyncClient("http://cryptopulse.mcp", credential_from(ctx.headers),
                           transport=transport)  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await principal_of(request, credential_from(request.headers))
        except ProblemError as exc:
            response = problem_response(
                request, exc.status, exc.slug, exc.title, exc.detail, exc.errors, exc.headers
            )
            await response(scope, receive, send)
            return
        if self._manager is None:  # not running (outside the app's lifespan)
            response = problem_response(request, 503, "unavailable", "Service Unavailable")
            await response(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)
