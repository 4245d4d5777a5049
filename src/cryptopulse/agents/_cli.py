"""`cryptopulse mcp`: the MCP tools over stdio, for agents that launch their tools."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

__all__ = ["mcp_command"]


def mcp_command(
    url: Annotated[
        str,
        typer.Option(envvar="CRYPTOPULSE_URL", help="Base URL of a running cryptopulse server."),
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="CRYPTOPULSE_API_KEY",
            help="API key the tools call with (prefer the environment variable).",
        ),
    ] = None,
    jwt: Annotated[
        bool, typer.Option(help="Exchange the key for short-lived JWTs and renew them.")
    ] = False,
) -> None:
    """Serve the MCP tools on stdin/stdout (Model Context Protocol), calling the API at
    URL with the key's scopes. Agents configure it as a stdio server (docs/mcp.md)."""
    from cryptopulse.agents.stdio import run_stdio  # noqa: PLC0415  (keeps --help quick)

    asyncio.run(run_stdio(url, api_key, use_jwt=jwt))
