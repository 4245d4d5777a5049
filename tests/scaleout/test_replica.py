"""An ingest process and an API replica in one test process, on the real PostgreSQL and
Redis: the replica serves what the ingest publishes, and outages of either service give a
quick 503 (with Retry-After) and heal by themselves."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from bus.test_backends import delete_prefix
from cryptopulse.api import create_app
from cryptopulse.domain.models import Trade
from cryptopulse.processes import api_services, create_ingest_app
from cryptopulse.processes.ingest import share_supervisor
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from scaleout.services import REDIS_URL, RedisServer, TcpProxy, until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T0 = 1_700_000_040_000


def make_settings(database_url: str, bus_url: str, prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        bus_url=bus_url,
        redis_prefix=prefix,
        source="sim",
        anonymous_plan="public",
        plans={"public": {"rpm": 10_000, "burst": 1_000}},
        analytics_enabled=False,
        bootstrap_key=False,
    )


def no_sources(settings: Settings) -> Services:
    services = Services.create(settings, sources=[], supervisors=[share_supervisor("test")])
    services.role = "ingest"
    return services


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            yield client


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"cptest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


def trade(i: int, price: float) -> Trade:
    return Trade("coinbase:BTC-USD", str(i), price, 0.5, "buy", T0 + i * 1000, T0 + i * 1000)


async def test_a_replica_serves_what_an_ingest_shard_publishes(
    postgres_url: str, prefix: str
) -> None:
    settings = make_settings(postgres_url, REDIS_URL, prefix)
    ingest = create_ingest_app(settings, no_sources)
    async with running(ingest) as ingest_client:
        services: Services = ingest.state.services
        services.market.note_instrument("coinbase:BTC-USD", "replay")
        for i in range(3):
            await services.pipeline.on_trade(trade(i, 100.0 + i))
        replica = create_app(settings, api_services)
        async with running(replica) as client:
            # loaded from the latest-state cache, then followed live
            async def ticker_is(price: float) -> bool:
                response = await client.get("/v1/tickers/coinbase:BTC-USD")
                return response.status_code == 200 and response.json()["last"] == price

            await until(lambda: ticker_is(102.0))
            await services.pipeline.on_trade(trade(3, 107.5))
            await until(lambda: ticker_is(107.5))
            body = (await client.get("/v1/tickers/coinbase:BTC-USD")).json()
            assert body["source"] == "replay"
            ready = (await client.get("/readyz")).json()
            assert ready["role"] == "api" and ready["bus"] and ready["store"]
            assert ready["dependencies"]["store"]["backend"] == "postgresql"
        assert (await ingest_client.get("/readyz")).json()["role"] == "ingest"
        metrics = (await ingest_client.get("/metrics")).text
        assert "cryptopulse_bus_published_messages_total" in metrics
        assert "cryptopulse_bus_publisher_up 1.0" in metrics


async def test_database_outage_is_a_quick_503_and_heals(postgres_url: str, prefix: str) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.port or 5432)
    await proxy.start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(proxied, REDIS_URL, prefix)
    async with running(create_app(settings, api_services)) as client:
        path = "/v1/candles/coinbase:BTC-USD?interval=1m"
        await client.get("/v1/instruments")
        await proxy.cut()
        started = time.monotonic()
        response = await client.get("/v1/instruments")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503 and response.headers["retry-after"] == "2"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/unavailable")
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["store"] is False
        await proxy.restore()
        restored = time.monotonic()

        async def healed() -> bool:
            return (await client.get(path)).status_code in (200, 404)

        await until(healed, timeout=10)
        assert time.monotonic() - restored < 10
        assert (await client.get("/readyz")).status_code == 200
    await proxy.cut()


async def test_redis_outage_is_reported_and_heals(postgres_url: str, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        settings = make_settings(postgres_url, redis.url, "cp:")
        settings = settings.model_copy(update={"rate_limit_storage_url": redis.url})
        async with running(create_app(settings, api_services)) as client:
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/v1/instruments")).status_code == 200
            redis.stop()
            started = time.monotonic()
            ready = await client.get("/readyz")
            limited = await client.get("/v1/instruments")  # rate limits live in Redis
            assert time.monotonic() - started < 1.5
            assert ready.status_code == 503 and ready.json()["bus"] is False
            assert limited.status_code == 503 and limited.headers["retry-after"] == "2"
            redis.start()

            async def healed() -> bool:
                ready = await client.get("/readyz")
                return ready.status_code == 200 and (
                    (await client.get("/v1/instruments")).status_code == 200
                )

            await until(healed, timeout=10)
    finally:
        redis.stop()
