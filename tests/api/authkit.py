"""Factories for access-control tests: an app on a temporary SQLite store, keys, clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.settings import Settings

JWT_SECRET = "test-secret-" + "x" * 40


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/auth.db",
        "source": "sim",
        "bootstrap_key": False,
        "jwt_secret": JWT_SECRET,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def on_loopback(app: Any, **config: Any) -> AsyncIterator[int]:
    """`app` served by a real uvicorn server on 127.0.0.1 (a free port): the port. Its
    lifespan runs with the server unless `lifespan="off"` (the caller runs it)."""
    options: dict[str, Any] = {"lifespan": "on", "log_level": "warning"} | config
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **options))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def http(app: FastAPI, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


async def make_key(
    app: FastAPI,
    account: str = "alice",
    scopes: Iterable[str] = ("market:read",),
    plan: str = "pro",
    **kwargs: Any,
) -> str:
    services: Services = app.state.services
    new = await create_key(
        services.access.db,
        account=account,
        name=f"{account} test key",
        scopes=list(scopes),
        plan=plan,
        plans=set(services.access.plans),
        actor="test",
        **kwargs,
    )
    return new.key


def done_without_io(coro: Any) -> Any:
    """Run `coro` one step: its result if it finished without waiting for anything (no
    store read, no other task); AssertionError if it had to wait."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("it waited (for the store)")
