"""The stream protocol end to end over every backend pair: memory bus + SQLite and Redis
bus + PostgreSQL (the real servers), under a real uvicorn server. Same frames, same seqs,
same resume behaviour on both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from bus.test_backends import delete_prefix
from cryptopulse.api.app import create_app
from cryptopulse.bus.redis import RedisBus
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from scaleout.cluster import ADMIN_PG
from scaleout.services import REDIS_URL

POSTGRES_URL = ADMIN_PG.replace("postgresql://", "postgresql+asyncpg://", 1)

TRADES = "trades:coinbase:BTC-USD"
T0 = 1_700_000_000_000


@pytest.fixture(
    params=[
        "memory+sqlite",
        pytest.param("redis+postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    if request.param == "memory+sqlite":
        yield {"database_url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "bus_url": "memory://"}
        return
    prefix = f"cptest:{uuid.uuid4().hex[:10]}:"
    name = f"cp_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        database_url = make_url(POSTGRES_URL).set(database=name).render_as_string(False)
        yield {"database_url": database_url, "bus_url": REDIS_URL, "redis_prefix": prefix}
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
        await delete_prefix(REDIS_URL, prefix)


@asynccontextmanager
async def serve(backend: dict[str, str], history: int) -> AsyncIterator[tuple[FastAPI, str]]:
    settings = Settings(
        **backend,
        source="sim",
        anonymous_plan="pro",
        bus_history=history,
        analytics_enabled=False,
        bootstrap_key=False,
    )
    app = create_app(settings, services_factory=lambda s: Services.create(s, sources=[]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app, f"ws://127.0.0.1:{port}/v1/stream"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def publish(app: FastAPI, start: int, count: int) -> None:
    bus = app.state.services.bus
    for i in range(start, start + count):
        await bus.publish(TRADES, orjson.dumps({"n": i}), T0 + i)
    if isinstance(bus, RedisBus):
        assert await bus.flush(10)


async def frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    got = []
    for _ in range(count):
        raw = await asyncio.wait_for(ws.recv(), 5)
        got.append(orjson.loads(raw))
    return got


async def subscribe(url: str, **resume: int) -> ClientConnection:
    ws = await connect(url, open_timeout=5, close_timeout=2)
    op = {"op": "subscribe", "id": 1, "channels": [TRADES], "resume": resume or None}
    await ws.send(orjson.dumps(op).decode())
    (reply,) = await frames(ws, 1)
    assert reply == {"type": "subscribed", "id": 1, "channels": [TRADES]}
    return ws


def summary(got: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (f["type"], f.get("seq"), f.get("data", {}).get("n"), f.get("from_seq"), f.get("to_seq"))
        for f in got
    ]


async def test_snapshot_then_live(backend: dict[str, str]) -> None:
    async with serve(backend, history=100) as (app, url):
        await publish(app, 0, 3)
        ws = await subscribe(url)
        await publish(app, 3, 2)
        got = summary(await frames(ws, 3))
        assert got == [
            ("snapshot", 3, 2, None, None),
            ("data", 4, 3, None, None),
            ("data", 5, 4, None, None),
        ]
        await ws.close()


async def test_resume_replays_what_was_missed(backend: dict[str, str]) -> None:
    async with serve(backend, history=100) as (app, url):
        await publish(app, 0, 6)
        ws = await subscribe(url, **{TRADES: 3})
        await publish(app, 6, 1)
        got = summary(await frames(ws, 4))
        assert got == [("data", s, s - 1, None, None) for s in (4, 5, 6, 7)]
        await ws.close()


async def test_resume_beyond_history_is_gap_and_snapshot(backend: dict[str, str]) -> None:
    async with serve(backend, history=3) as (app, url):
        await publish(app, 0, 250)  # Redis trims by whole stream nodes: go well past them
        ws = await subscribe(url, **{TRADES: 1})
        kind, _, _, first, last = summary(await frames(ws, 1))[0]
        assert kind == "gap" and first == 2 and 2 <= last < 250
        assert summary(await frames(ws, 1)) == [("snapshot", 250, 249, None, None)]
        await ws.close()
