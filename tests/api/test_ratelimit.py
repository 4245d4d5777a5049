"""Rate-limit correctness: many concurrent clients on one key, memory and Redis storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from authkit import http, make_key, make_settings, running
from pydantic import ValidationError

from cryptopulse.domain.models import Trade
from cryptopulse.settings import Settings

RPM = 50
CLIENTS = 20
EACH = 10


@pytest.mark.parametrize(
    "storage",
    ["memory://", pytest.param("redis://127.0.0.1:6379/15", marks=pytest.mark.redis)],
)
async def test_concurrent_clients_get_the_plan_within_one(tmp_path: Path, storage: str) -> None:
    settings = make_settings(
        tmp_path,
        rate_limit_storage_url=storage,
        plans={"tight": {"rpm": RPM, "burst": 10_000, "monthly_quota": 10**9}},
    )
    async with running(settings) as app:
        key = await make_key(app, plan="tight")

        async def one_client() -> list[tuple[int, dict[str, str]]]:
            async with http(app, key) as client:
                replies = await asyncio.gather(
                    *(client.get("/v1/instruments") for _ in range(EACH))
                )
            return [(r.status_code, dict(r.headers)) for r in replies]

        results = [
            r
            for batch in await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
            for r in batch
        ]
    allowed = [h for status, h in results if status == 200]
    limited = [h for status, h in results if status == 429]
    assert len(allowed) + len(limited) == CLIENTS * EACH
    assert abs(len(allowed) - RPM) <= 1
    assert all(int(h["retry-after"]) >= 1 for h in limited)
    assert all(h["x-ratelimit-limit"] == str(RPM) for h in allowed + limited)
    assert all('"minute";q=50;w=60' in h["ratelimit-policy"] for h in allowed)


async def test_burst_limit_and_problem_body(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, plans={"b": {"rpm": 1000, "burst": 3}})
    async with running(settings) as app:
        key = await make_key(app, plan="b")
        async with http(app, key) as client:
            replies = await asyncio.gather(*(client.get("/v1/tickers") for _ in range(6)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 200, 429, 429, 429]
    problem = next(r for r in replies if r.status_code == 429)
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["status"] == 429 and problem.headers["retry-after"]


async def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, auth_failures_per_minute=3)) as app:
        async with http(app, "cpk_live_" + "A" * 50) as client:
            codes = [(await client.get("/v1/tickers")).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


async def test_a_blocked_address_keeps_its_verified_keys(tmp_path: Path) -> None:
    """The guard is against guessing: a key this worker has verified is not a guess, so it
    keeps working from an address that others' failures blocked (and costs no guard check:
    on Redis that is a round trip per request). A key not yet verified waits out the block."""
    async with running(make_settings(tmp_path, auth_failures_per_minute=3)) as app:
        good, other = await make_key(app), await make_key(app, account="bob")
        async with http(app, good) as client:
            assert (await client.get("/v1/tickers")).status_code == 200
        async with http(app, "cpk_live_" + "A" * 50) as client:
            codes = [(await client.get("/v1/tickers")).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        async with http(app, good) as client:
            assert (await client.get("/v1/tickers")).status_code == 200
        async with http(app, other) as client:
            assert (await client.get("/v1/tickers")).status_code == 429


RATE_HEADERS = {
    "ietf": {"ratelimit-policy", "ratelimit"},
    "draft": {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"},
    "x": {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"},
}


@pytest.mark.parametrize("families", [["draft"], ["x", "ietf"], []])
async def test_rate_limit_header_families(tmp_path: Path, families: list[str]) -> None:
    """`rate_limit_headers` chooses the families every limited response carries: a declared
    route, a hot one (answered ahead of the stack) and a 429 alike."""
    plans = {"two": {"rpm": 2, "burst": 10}}
    settings = make_settings(tmp_path, plans=plans, rate_limit_headers=families)
    async with running(settings) as app:
        services = app.state.services
        services.market.note_instrument("coinbase:BTC-USD", "replay")
        await services.pipeline.on_trade(Trade("coinbase:BTC-USD", "1", 1.0, 1.0, "buy", 1, 2))
        async with http(app, await make_key(app, plan="two")) as client:
            replies = [
                await client.get(path)
                for path in ("/v1/instruments", "/v1/tickers/coinbase:BTC-USD", "/v1/instruments")
            ]
    wanted = set().union(*(RATE_HEADERS[f] for f in families))
    every = set().union(*RATE_HEADERS.values())
    assert [r.status_code for r in replies] == [200, 200, 429]
    for reply in replies:
        assert every & set(reply.headers) == wanted, (reply.url, reply.headers)
    assert replies[2].headers["retry-after"] and replies[2].json()["status"] == 429


def test_rate_limit_headers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_RATE_LIMIT_HEADERS", "x, draft")
    assert Settings().rate_limit_headers == ["x", "draft"]
    monkeypatch.setenv("CRYPTOPULSE_RATE_LIMIT_HEADERS", "")
    assert Settings().rate_limit_headers == []
    monkeypatch.setenv("CRYPTOPULSE_RATE_LIMIT_HEADERS", "ietf,github")
    with pytest.raises(ValidationError, match="rate_limit_headers"):
        Settings()
