"""MCP tools through the official SDK's own client: streamable HTTP at `/mcp` of the real
server, and stdio against the `cryptopulse mcp` subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from serve import CLI, first_key, free_port, start, stop, wait_ready  # noqa: E402

from cryptopulse.client import AsyncClient  # noqa: E402

TOOLS = {
    "list_instruments",
    "get_price",
    "get_prices",
    "get_candles",
    "get_indicators",
    "get_signals",
    "get_grades",
    "get_levels",
    "get_correlations",
    "get_sectors",
    "get_token_info",
    "list_alerts",
    "create_alert",
    "get_prediction",
}


@pytest.fixture
async def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    db, port = tmp_path / "s.db", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port)
    try:
        await asyncio.to_thread(wait_ready, base, proc)
        yield base, first_key(db)
    finally:
        await asyncio.to_thread(stop, proc)


def over_http(base: str, credential: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {credential}"}, timeout=10)
    return Client(streamable_http_client(f"{base}/mcp", http_client=http))


def result_of(result: Any) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def wait_for_trades(base: str, key: str) -> None:
    """Until the store has simulated trades and their candle (written in batches; the open
    candle every `candle_update_ms`, so it can trail its first trades by a tick)."""
    async with AsyncClient(base, key) as client:
        for _ in range(100):
            if (await client.trades("sim:BTC-USD", limit=1)).data and (
                await client.candles("sim:BTC-USD", interval="1m", limit=1)
            ).data:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("no simulated trades")


async def test_tools_over_streamable_http_with_the_callers_key(server) -> None:  # type: ignore[no-untyped-def]
    base, key = server
    await wait_for_trades(base, key)
    async with over_http(base, key) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert TOOLS <= set(tools)
        assert all(len(tools[name].description or "") > 60 for name in TOOLS)
        price = result_of(await mcp.call_tool("get_price", {"instrument": "sim:BTC-USD"}))
        assert price["instrument"] == "sim:BTC-USD" and price["last"] > 0
        candles = result_of(
            await mcp.call_tool("get_candles", {"instrument": "sim:BTC-USD", "interval": "1m"})
        )
        assert candles["columns"][:2] == ["open_time", "open"] and candles["rows"]
        listed = result_of(await mcp.call_tool("list_instruments", {}))
        assert ["sim:BTC-USD", False, "simulated"] in listed["rows"]
        token = result_of(await mcp.call_tool("get_token_info", {"symbol": "BTC"}))
        assert token["symbol"] == "BTC" and token["sectors"]
        missing = await mcp.call_tool("get_price", {"instrument": "nowhere:FOO-BAR"})
        assert missing.is_error and "404" in missing.content[0].text


async def test_scopes_hold_and_a_bad_credential_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    base, admin = server
    async with AsyncClient(base, admin) as client:
        narrow = (await client.create_key(name="agent", scopes=["market:read"], plan="pro")).key
    async with over_http(base, narrow) as mcp:
        assert not (await mcp.call_tool("list_instruments", {})).is_error
        refused = await mcp.call_tool("get_grades", {})
        assert refused.is_error and "403" in refused.content[0].text
        assert "signals:read" in refused.content[0].text
        denied = await mcp.call_tool(
            "create_alert", {"name": "x", "kind": "price_cross", "params": {}}
        )
        assert denied.is_error and "alerts:write" in denied.content[0].text
    async with over_http(base, admin) as mcp:
        params = {"instrument": "sim:BTC-USD", "level": 1e9, "direction": "up"}
        created = result_of(
            await mcp.call_tool(
                "create_alert", {"name": "moon", "kind": "price_cross", "params": params}
            )
        )
        assert created["status"] == "active"
        listed = result_of(await mcp.call_tool("list_alerts", {}))
        assert [row[0] for row in listed["rows"]] == [created["id"]]
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        anonymous = await http.post(f"{base}/mcp", json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        wrong = await http.post(
            f"{base}/mcp", json=body, headers={"Authorization": "Bearer cpk_live_" + "A" * 50}
        )
        assert wrong.status_code == 401


async def test_tools_over_stdio_against_the_cryptopulse_mcp_process(server) -> None:  # type: ignore[no-untyped-def]
    base, key = server
    await wait_for_trades(base, key)
    params = StdioServerParameters(
        command=CLI, args=["mcp", "--url", base], env={"CRYPTOPULSE_API_KEY": key}
    )
    async with Client(params) as mcp:
        tools = {tool.name for tool in (await mcp.list_tools()).tools}
        assert TOOLS <= tools
        prices = result_of(await mcp.call_tool("get_prices", {}))
        assert prices["columns"][0] == "instrument"
        assert any(row[0] == "sim:BTC-USD" for row in prices["rows"])
