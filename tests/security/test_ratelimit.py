"""Rate limits on a Redis that accepts connections and never answers (blackholed behind a
firewall, a hung server): REST gives a 503 within a second instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cryptopulse.api import create_app
from cryptopulse.security.plans import Plan
from cryptopulse.security.ratelimit import RateLimiter
from cryptopulse.settings import Settings


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A TCP listener on 127.0.0.1 that accepts and never replies."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.transport.abort()
    server.close()
    await server.wait_closed()


async def test_a_silent_redis_fails_the_hit_quickly(silent_redis: str) -> None:
    limiter = RateLimiter(silent_redis, 30, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017  (redis-py's TimeoutError: a 503 upstream)
        await limiter.hit(Plan("free", 10, 5, 1, 10, 1, 10, 10, 100), "key")
    assert time.monotonic() - started < 0.8


async def test_rest_answers_503_within_a_second(silent_redis: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/store.db",
        rate_limit_storage_url=silent_redis,
        anonymous_plan="public",
        source="sim",
        analytics_enabled=False,
        ml_enabled=False,
        bootstrap_key=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            started = time.monotonic()
            response = await client.get("/v1/instruments")
            assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
