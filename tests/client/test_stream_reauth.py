"""The stream renews an expiring JWT (`token_expired` -> `auth` op) without reconnecting;
uvicorn with the real app in process, so the test can mint a 2-second token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvicorn
from serve import free_port

from cryptopulse.api import create_app
from cryptopulse.client import AsyncClient, StreamMessage
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.settings import Settings
from cryptopulse.sources.auto import build_sources


async def test_expired_jwt_is_renewed_in_place(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        source="sim",
        instruments=["coinbase:BTC-USD"],
        bootstrap_key=False,
        jwt_secret="stream-auth-secret-" + "x" * 40,
        ws_reauth_grace_s=2.0,
    )

    def services(s: Settings) -> Services:
        sources, supervisors = build_sources(s)
        return Services.create(s, sources, supervisors)

    app = create_app(settings, services)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    arrivals: list[tuple[float, StreamMessage]] = []
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        services: Services = app.state.services
        new = await create_key(
            services.access.db, account="a", name="jwt", scopes=["market:read"], plan="pro",
            plans=set(services.access.plans), actor="test",
        )  # fmt: skip
        short, ttl = services.access.tokens.issue(
            new.record.key_id, "a", frozenset({"market:read"}), "pro", ttl_s=2
        )
        async with AsyncClient(f"http://127.0.0.1:{port}", new.key, use_jwt=True) as client:
            client.credentials.set_token(short, ttl)
            stream = client.stream(["trades:sim:BTC-USD"])

            async def consume() -> None:
                async for message in stream:
                    arrivals.append((loop.time(), message))

            loop = asyncio.get_running_loop()
            started = loop.time()
            task = asyncio.create_task(consume())
            await asyncio.sleep(7)  # past expiry (2 s) and the grace after it (2 s)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert stream.reauths == 1 and stream.reconnects == 0
        assert client.credentials.token != short
        assert any(at > started + 5 for at, _ in arrivals), "no data after the renewal"
    finally:
        server.should_exit = True
        await serving
