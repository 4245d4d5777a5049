"""/v1/tokens values FDV with a fresh on-chain `totalSupply()` (its block time as as-of) and
says so; a stale read or none leaves the registry's figure. Real app (lifespan, SQLite
store, analytics on stored candles), on-chain rows written through the on-chain service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import Block, Tx
from cryptopulse.runtime import Services
from cryptopulse.settings import ChainConfig, Settings, TokenConfig
from cryptopulse.sources.base import now_ms
from cryptopulse.store.sql import SQLStore

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
TST = "0x" + "ab" * 20
OLD = "0x" + "cd" * 20
REGISTRY = """
sectors: [{id: test-pack, name: Test pack}]
tokens:
  - {symbol: TST, name: Test, sectors: [test-pack],
     supply: {circulating: 100, total: 1000, max: 2000, as_of: 2024-11-01}}
  - {symbol: OLD, name: Old, sectors: [test-pack],
     supply: {circulating: 10, total: 50, max: null, as_of: 2024-11-01}}
"""


def make_block(number: int, time: int) -> Block:
    txs = (Tx(f"0x{number:064x}", "0x" + "11" * 20, "0x" + "22" * 20, 1, 10**9, None, None),)
    return Block("devnet", number, f"0x{number:064x}", f"0x{number - 1:064x}", time,
                 21_000, 30_000_000, 10**9, txs)  # fmt: skip


def api_only(settings: Settings) -> Services:
    services = Services.create(settings, sources=[])
    services.role = "api"  # follows no chain: supplies come from the store
    return services


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    db = f"sqlite+aiosqlite:///{tmp_path}/tokens.db"
    store = SQLStore(db)
    await store.migrate()
    await store.upsert_candles(
        [
            Candle("binance:TST-USDT", "1h", T0 + i * HOUR, 2.0, 2.0, 2.0, 2.0, 1.0, 2.0, 1, True)
            for i in range(30)
        ]  # fmt: skip
    )
    await store.close()
    (tmp_path / "tokens.yaml").write_text(REGISTRY)
    chain = ChainConfig(
        name="devnet",
        chain_id=1337,
        rpc_url="http://127.0.0.1:9",
        tokens=[
            TokenConfig(symbol="TST", address=TST, decimals=6),
            TokenConfig(symbol="OLD", address=OLD, decimals=6),
        ],
    )
    settings = Settings(
        database_url=db,
        anonymous_plan="enterprise",
        analytics_interval="1h",
        tokens_path=str(tmp_path / "tokens.yaml"),
        onchain_chains=[chain],
    )
    app = create_app(settings, api_only)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        assert services.analytics is not None and services.onchain is not None
        assert await services.analytics.wait_ready(10)
        onchain = services.onchain
        now = now_ms()
        await onchain.on_block(make_block(7, now - 3 * 24 * HOUR))  # OLD's read: stale
        await onchain.on_supply("devnet", OLD, 7, 40 * 10**6)
        for number in range(8, 12):
            await onchain.on_block(make_block(number, now - (12 - number) * 60_000))
        await onchain.on_supply("devnet", TST, 10, 1_500 * 10**6)
        await onchain.flush()
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_fresh_onchain_supply_values_fdv(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tokens/TST")
    assert response.status_code == 200
    body = response.json()
    assert body["instrument"] == "binance:TST-USDT" and body["price"] == 2.0
    assert body["supply_source"] == "onchain"
    assert body["fdv_supply"] == 1_500.0 and body["fdv"] == 3_000.0
    assert body["market_cap"] == 200.0  # circulating stays the registry's
    supply = body["onchain_supply"]
    assert supply["chain"] == "devnet" and supply["token"] == TST
    assert supply["block_number"] == 10 and supply["total_supply"] == 1_500.0
    assert 0 < now_ms() - supply["time"] < 5 * 60_000  # block 10's time: its as-of
    assert body["supply"]["as_of"] == "2024-11-01"  # the registry's figures are still shown


async def test_stale_onchain_supply_falls_back_to_the_registry(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/tokens/OLD")).json()
    assert body["supply_source"] == "registry" and body["onchain_supply"] is None
    assert body["fdv_supply"] == 50.0  # no cap: the registry's total
    assert body["fdv"] is None  # no candles, no price


async def test_token_list_carries_the_supply_source(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/tokens", params={"sector": "test-pack"})).json()
    sources = {t["symbol"]: t["supply_source"] for t in body["data"]}
    assert sources == {"OLD": "registry", "TST": "onchain"}


async def test_openapi_declares_the_supply_source(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert {"supply_source", "fdv_supply", "onchain_supply"} <= set(
        schemas["RegistryToken"]["properties"]
    )
    assert "time" in schemas["TokenOnchainSupply"]["properties"]
