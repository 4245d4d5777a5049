"""`cryptopulse` commands start without importing what they do not use: the CLI registers
`cryptopulse mcp`, but importing the CLI must not import the MCP SDK or the API app (it
did, through `cryptopulse.agents`' eager re-exports: 1.6 s of every command's start)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_leaves_the_mcp_sdk_and_the_app_unimported() -> None:
    probe = (
        "import sys, cryptopulse.cli\n"
        "print(sorted(m for m in ('mcp', 'cryptopulse.agents.tools', 'cryptopulse.api.app')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_agents_package_still_exports_its_names() -> None:
    from cryptopulse import agents
    from cryptopulse.agents.http import McpEndpoint
    from cryptopulse.agents.tools import build_server

    assert agents.McpEndpoint is McpEndpoint and agents.build_server is build_server
    assert callable(agents.run_stdio) and callable(agents.credential_from)
    try:
        agents.nothing_here  # noqa: B018
    except AttributeError as exc:
        assert "nothing_here" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
