"""REST on-chain endpoints over the real app (lifespan, SQLite store), fed real Block
records through the on-chain service (the node side is tested in tests/onchain)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.api._stream_ops import OpError, normalize_channel
from cryptopulse.domain.models import Ticker
from cryptopulse.domain.onchain import Block, TokenTransfer, Tx
from cryptopulse.runtime import Services
from cryptopulse.settings import ChainConfig, Settings, TokenConfig

T0 = 1_800_000_000_000  # ms, an hour boundary
TOKEN = "0x" + "ab" * 20
EXCHANGE = "0x" + "ee" * 20


def addr(i: int) -> str:
    return "0x" + f"{i:040x}"


def make_block(number: int, time: int, transfers: list[tuple[int, int, int]]) -> Block:
    """A block with one ETH payment and the given (sender, receiver, whole tokens) moves."""
    txs = (Tx(f"0x{number:064x}", addr(100 + number), addr(200), 1, None, 10**10, 10**9),)
    moves = tuple(
        TokenTransfer(TOKEN, addr(s) if s else EXCHANGE, addr(r), amount * 10**6, number, i, "0x1")
        for i, (s, r, amount) in enumerate(transfers)
    )
    return Block(
        "devnet",
        number,
        f"0x{number:064x}",
        f"0x{number - 1:064x}",
        time,
        21_000 * len(txs),
        30_000_000,
        10**9,
        txs,
        moves,
    )


def api_only(settings: Settings) -> Services:
    services = Services.create(settings, sources=[])
    services.role = "api"  # serve the store; follow no chain
    return services


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    chain = ChainConfig(
        name="devnet",
        chain_id=1337,
        rpc_url="http://127.0.0.1:9",
        tokens=[TokenConfig(symbol="TST", address=TOKEN, decimals=6, whale_threshold=1_000)],
        exchanges={EXCHANGE: "bigex"},
    )
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        anonymous_plan="public",
        analytics_enabled=False,
        onchain_chains=[chain],
    )
    app = create_app(settings, api_only)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        assert services.onchain is not None
        onchain = services.onchain
        await onchain.on_block(make_block(1, T0 + 1_000, [(1, 2, 5), (0, 3, 2_000)]))
        await onchain.on_block(make_block(2, T0 + 13_000, [(2, 4, 1)]))
        await onchain.on_block(make_block(3, T0 + 3_600_000, [(4, 5, 7)]))
        await onchain.on_supply("devnet", TOKEN, 3, 21_000_000 * 10**6)
        await onchain.flush()
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_chains_list_status_and_tokens(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/onchain/chains")).json()
    [chain] = body["data"]
    assert chain["chain"] == "devnet" and chain["chain_id"] == 1337
    assert chain["tokens"][0]["total_supply"] == 21_000_000
    assert chain["tokens"][0]["supply_block"] == 3 and chain["exchanges"] == 1


async def test_chain_metrics_by_block_hour_and_day(client: httpx.AsyncClient) -> None:
    blocks = (await client.get("/v1/onchain/devnet/metrics", params={"interval": "block"})).json()
    assert [b["number"] for b in blocks["data"]] == [1, 2, 3]
    assert blocks["data"][0]["active_addresses"] == 2
    assert blocks["data"][0]["utilisation"] == pytest.approx(21_000 / 30_000_000)
    assert blocks["data"][0]["priority_fee_gwei"] == pytest.approx(1.0)
    hours = (await client.get("/v1/onchain/devnet/metrics")).json()
    assert [(h["open_time"], h["blocks"], h["tx_count"]) for h in hours["data"]] == [
        (T0, 2, 2),
        (T0 + 3_600_000, 1, 1),
    ]
    assert hours["data"][0]["active_addresses"] == 3  # two senders, one receiver
    page = (
        await client.get("/v1/onchain/devnet/metrics", params={"interval": "block", "limit": 2})
    ).json()
    assert [b["number"] for b in page["data"]] == [2, 3]
    older = (
        await client.get(
            "/v1/onchain/devnet/metrics",
            params={"interval": "block", "limit": 2, "cursor": page["next_cursor"]},
        )
    ).json()
    assert [b["number"] for b in older["data"]] == [1] and older["next_cursor"] is None
    day = (await client.get("/v1/onchain/devnet/metrics", params={"interval": "1d"})).json()
    assert [(d["blocks"], d["active_addresses"]) for d in day["data"]] == [(3, 4)]


async def test_token_metrics_by_symbol_or_address_with_fdv(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    services: Services = app.state.services
    services.market.tickers["TST-USD"] = Ticker("TST-USD", None, None, 2.0, None, None, None, 1, 1)
    by_symbol = (await client.get("/v1/onchain/devnet/tokens/tst/metrics")).json()
    by_address = (await client.get(f"/v1/onchain/devnet/tokens/{TOKEN}/metrics")).json()
    assert by_symbol == by_address
    first, second = by_symbol["data"]
    assert (first["transfers"], first["volume"], first["whales"]) == (3, 2_006, 1)
    assert (first["senders"], first["receivers"]) == (3, 3)  # 1, the exchange, 2 -> 2, 3, 4
    assert (first["inflow"], first["outflow"]) == (0, 2_000)
    assert second["transfers"] == 1 and second["volume"] == 7
    assert by_symbol["supply"] == {
        "total_supply": 21_000_000,
        "block_number": 3,
        "price": 2.0,
        "fdv": 42_000_000,
    }


async def test_transfers_newest_first_filtered_and_paged(client: httpx.AsyncClient) -> None:
    url = "/v1/onchain/devnet/tokens/TST/transfers"
    page = (await client.get(url, params={"limit": 2})).json()
    assert [(t["block_number"], t["amount"]) for t in page["data"]] == [(3, 7), (2, 1)]
    rest = (await client.get(url, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [(t["block_number"], t["log_index"]) for t in rest["data"]] == [(1, 1), (1, 0)]
    assert rest["next_cursor"] is None
    big = (await client.get(url, params={"min_value": 6})).json()
    assert [t["amount"] for t in big["data"]] == [7, 2_000]
    assert big["data"][1]["from"] == EXCHANGE and big["data"][1]["amount_raw"] == "2000000000"


async def test_unknown_chain_token_and_bad_cursor_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/onchain/nochain/metrics")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/onchain/devnet/tokens/NOPE/metrics")).status_code == 404
    bad = await client.get("/v1/onchain/devnet/metrics", params={"cursor": "zzz"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    wrong = await client.get("/v1/onchain/devnet/metrics", params={"interval": "5m"})
    assert wrong.status_code == 422


def test_onchain_channels_are_accepted_and_normalized() -> None:
    assert normalize_channel("onchain:DevNet") == "onchain:devnet"
    with pytest.raises(OpError):
        normalize_channel("onchain:")
