"""The API as Model Context Protocol tools for AI agents (docs/mcp.md).

Named `agents` so it never shadows the `mcp` package it is built on.
"""

from cryptopulse.agents.http import McpEndpoint, credential_from
from cryptopulse.agents.stdio import run_stdio
from cryptopulse.agents.tools import build_server

__all__ = ["McpEndpoint", "build_server", "credential_from", "run_stdio"]
