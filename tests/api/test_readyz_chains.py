"""/readyz reports the EVM chain feeds (connected, head, lag in blocks, last error) next to
the exchange feeds: one chain followed on a real ganache node, one whose endpoint refuses
connections. Chains are informational: neither makes the API unready."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from chain import CHAIN_ID, local_chain
from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.settings import ChainConfig, Settings

CONFIRMATIONS = 2


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def no_sources(settings: Settings) -> Services:
    return Services.create(settings, sources=[])


def make_app(tmp_path: Path, chains: list[ChainConfig]) -> FastAPI:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/ready.db",
        analytics_enabled=False,
        onchain_chains=chains,
    )
    return create_app(settings, no_sources)


async def ready_until(
    client: httpx.AsyncClient, done: Any, attempts: int = 200
) -> tuple[int, dict[str, Any]]:
    """Poll /readyz until `done(body)` (10 s at most)."""
    for _ in range(attempts):
        response = await client.get("/readyz")
        body = response.json()
        if done(body):
            return response.status_code, body
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never got there: {body}")


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["chains"]}


async def test_readyz_reports_each_chain_feed(tmp_path: Path) -> None:
    async with local_chain() as node:
        for _ in range(6):
            await node.mine()
        head = int(await node.rpc("eth_blockNumber"), 16)
        chains = [
            ChainConfig(
                name="devnet",
                chain_id=CHAIN_ID,
                rpc_url=node.url,
                confirmations=CONFIRMATIONS,
                backfill_blocks=10,
                poll_interval_s=0.1,
            ),
            ChainConfig(
                name="downnet",
                chain_id=5,
                rpc_url=f"http://127.0.0.1:{closed_port()}",
                max_retries=0,
                timeout_s=1.0,
            ),
        ]
        app = make_app(tmp_path, chains)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                status, body = await ready_until(
                    client,
                    lambda b: (
                        by_name(b)["devnet"]["processed"] == head - CONFIRMATIONS
                        and by_name(b)["downnet"]["last_error"] is not None
                    ),
                )
    assert status == 200 and body["status"] == "ready"  # chains do not gate readiness
    assert body["feeds"] == []
    devnet, downnet = by_name(body)["devnet"], by_name(body)["downnet"]
    assert devnet["connected"] is True and devnet["last_error"] is None
    assert devnet["chain_id"] == CHAIN_ID and devnet["confirmations"] == CONFIRMATIONS
    assert devnet["head"] == head
    assert devnet["lag_blocks"] == CONFIRMATIONS  # caught up: only the confirmation depth
    assert devnet["age_ms"] is not None and 0 <= devnet["age_ms"] < 60_000
    assert devnet["reorgs"] == 0
    assert downnet["connected"] is False
    assert downnet["head"] is None and downnet["processed"] is None
    assert downnet["lag_blocks"] is None and downnet["last_message"] is None


async def test_readyz_without_chains_lists_none(tmp_path: Path) -> None:
    app = make_app(tmp_path, [])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["chains"] == []


async def test_openapi_declares_the_chain_feeds(tmp_path: Path) -> None:
    app = make_app(tmp_path, [])
    schemas = app.openapi()["components"]["schemas"]
    assert "chains" in schemas["Readiness"]["properties"]
    assert {"head", "lag_blocks", "last_error", "connected"} <= set(
        schemas["ChainFeedOut"]["properties"]
    )
