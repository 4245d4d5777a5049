"""MCP over stdio (`cryptopulse mcp`): the tools call a running server with one credential."""

from __future__ import annotations

from cryptopulse.agents.tools import build_server
from cryptopulse.client import AsyncClient

__all__ = ["run_stdio"]


async def run_stdio(base_url: str, api_key: str | None, *, use_jwt: bool = False) -> None:
    """Serve the tools on stdin/stdout until the agent closes them."""
    server = build_server(lambda _ctx: AsyncClient(base_url, api_key, use_jwt=use_jwt))
    await server.run_stdio_async()
