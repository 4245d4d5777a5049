"""The API as Model Context Protocol tools for AI agents (docs/mcp.md).

Named `agents` so it never shadows the `mcp` package it is built on. The names below are
imported on first use: `cryptopulse mcp` (and so every `cryptopulse` command, whose CLI
registers it) imports only `agents._cli`, not the MCP SDK and the app.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptopulse.agents.http import McpEndpoint, credential_from
    from cryptopulse.agents.stdio import run_stdio
    from cryptopulse.agents.tools import build_server

__all__ = ["McpEndpoint", "build_server", "credential_from", "run_stdio"]

_HOMES = {"McpEndpoint": "http", "credential_from": "http", "run_stdio": "stdio"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES.get(name, 'tools')}"), name)
