"""Access control of `/v1/stream` over a real socket (uvicorn on 127.0.0.1): credentials in
the handshake or an `auth` op in time, `token_expired` then 1008, connections per key over
the plan (4029), op rate per connection, scopes and plan limits on subscribe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from authkit import make_key, make_settings, on_loopback
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.security.keys import parse_key

TRADES = "trades:coinbase:BTC-USD"
T0 = 1_700_000_000_000
# A plan small enough to hit each limit with a handful of frames.
TINY = {"tiny": {"ws_connections": 2, "subscriptions": 2, "ws_messages_per_s": 4}}


@dataclass
class Live:
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def publish(self, count: int, start: int = 0) -> None:
        for i in range(start, start + count):
            await self.services.bus.publish(TRADES, orjson.dumps({"n": i}), T0 + i)

    def token(self, key: str, ttl_s: int) -> str:
        """A JWT of `key` that expires in `ttl_s` (below the endpoint's 30 s minimum)."""
        parsed = parse_key(key)
        assert parsed is not None
        access = self.services.access
        scopes = frozenset({"market:read"})
        token, _ = access.tokens.issue(parsed.key_id, "alice", scopes, "pro", ttl_s=ttl_s)
        return token


@asynccontextmanager
async def serve(tmp_path: Path, **overrides: Any) -> AsyncIterator[Live]:
    values: dict[str, Any] = {"plans": TINY, "key_cache_ttl_s": 0.2, "ws_auth_timeout_s": 1.0}
    settings = make_settings(tmp_path, **{**values, **overrides})
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with on_loopback(app) as port:
        yield Live(app, port)


def client(
    live: Live, key: str | None = None, header: str = "Authorization"
) -> Any:  # the websockets `connect` context manager
    headers = {}
    if key is not None:
        headers[header] = f"Bearer {key}" if header == "Authorization" else key
    return connect(live.url, additional_headers=headers, open_timeout=5, close_timeout=2)


async def send(ws: ClientConnection, **op: Any) -> None:
    await ws.send(orjson.dumps(op).decode())


async def recv(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    frame: dict[str, Any] = orjson.loads(raw)
    return frame


async def closed(ws: ClientConnection, within: float = 5.0) -> tuple[int | None, list[Any]]:
    """Frames until the server closes, and its close code."""
    frames = []
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(within):
            while True:
                frames.append(orjson.loads(await ws.recv()))
    return ws.close_code, frames


async def subscribed(ws: ClientConnection, *channels: str) -> None:
    await send(ws, op="subscribe", id=1, channels=list(channels))
    reply = await recv(ws)
    assert reply["type"] == "subscribed", reply


# --- handshake --------------------------------------------------------------------------


async def test_key_or_token_in_the_handshake_header(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app, plan="pro")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as rest:
            response = await rest.post(
                "/v1/oauth/token", data={"grant_type": "client_credentials", "client_secret": key}
            )
            assert response.status_code == 200, response.text
            jwt = response.json()["access_token"]
        async with (
            client(live, key) as by_key,
            client(live, key, "X-API-Key") as by_header,
            client(live, jwt) as by_jwt,
        ):
            for ws in (by_key, by_header, by_jwt):
                await subscribed(ws, TRADES)
            await live.publish(2)
            for ws in (by_key, by_header, by_jwt):
                assert [(await recv(ws))["seq"] for _ in range(2)] == [1, 2]


async def test_bad_handshake_credential_closes_1008(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app)
        forged = key[:-8] + ("A" * 8 if not key.endswith("A" * 8) else "B" * 8)
        for credential in (forged, "not-a-key", live.token(key, 60)[:-4] + "AAAA"):
            async with client(live, credential) as ws:
                code, frames = await closed(ws)
                assert code == 1008 and frames == []
                assert ws.close_reason and credential not in ws.close_reason


# --- the auth op ------------------------------------------------------------------------


async def test_auth_op_within_the_timeout(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app)
        async with client(live) as ws:
            await send(ws, op="ping", id=1)
            assert (await recv(ws))["code"] == "auth_required"
            await send(ws, op="subscribe", id=2, channels=[TRADES])
            refused = await recv(ws)
            assert (refused["id"], refused["code"]) == (2, "auth_required")
            await send(ws, op="auth", token="cpk_live_wrong")
            assert (await recv(ws))["code"] == "invalid_token"
            await send(ws, op="auth", token=key)
            assert await recv(ws) == {"type": "authenticated"}
            await subscribed(ws, TRADES)
            await asyncio.sleep(1.3)  # past ws_auth_timeout_s: authenticated, so it stays
            await live.publish(1)
            assert (await recv(ws))["seq"] == 1


async def test_no_auth_within_the_timeout_closes_1008(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_auth_timeout_s=0.5) as live, client(live) as ws:
        started = time.monotonic()
        await send(ws, op="ping", id=1)
        code, frames = await closed(ws)
        assert code == 1008 and ws.close_reason == "authentication required"
        assert [f["code"] for f in frames] == ["auth_required"]
        assert 0.4 < time.monotonic() - started < 4  # generous: CI machines are busy


# --- token expiry -----------------------------------------------------------------------


async def test_expired_token_gets_token_expired_then_grace_then_1008(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_reauth_grace_s=0.6) as live:
        key = await make_key(live.app)
        async with client(live, live.token(key, 1)) as ws:
            await subscribed(ws, TRADES)
            error = await recv(ws, timeout=4)
            assert (error["type"], error["code"]) == ("error", "token_expired")
            expired_at = time.monotonic()
            await send(ws, op="ping", id=5)
            assert (await recv(ws))["code"] == "auth_required"  # nothing but auth meanwhile
            code, _ = await closed(ws)
            assert code == 1008 and ws.close_reason == "token expired"
            assert 0.4 < time.monotonic() - expired_at < 4


async def test_reauth_after_token_expired_keeps_the_stream(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_reauth_grace_s=1.0) as live:
        key = await make_key(live.app)
        async with client(live, live.token(key, 1)) as ws:
            await subscribed(ws, TRADES)
            assert (await recv(ws, timeout=4))["code"] == "token_expired"
            await send(ws, op="auth", token=live.token(key, 60))
            assert await recv(ws) == {"type": "authenticated"}
            await asyncio.sleep(1.5)  # past the grace: renewed, so still open
            await live.publish(1)
            assert (await recv(ws))["seq"] == 1
            # Another key's token cannot take over the connection.
            other = await make_key(live.app, "bob")
            await send(ws, op="auth", token=other)
            assert (await recv(ws))["code"] == "invalid_token"


async def test_revoked_key_closes_its_streams_1008(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app)
        parsed = parse_key(key)
        assert parsed is not None
        async with client(live, key) as ws:
            await subscribed(ws, TRADES)
            from cryptopulse.security.management import revoke_key

            await revoke_key(live.services.access.db, parsed.key_id, actor="test")
            started = time.monotonic()
            code, _ = await closed(ws)
            assert code == 1008 and "revoked" in (ws.close_reason or "")
            # key_cache_ttl_s (0.2 s here) plus one check interval, with room for a busy CI
            assert time.monotonic() - started < 2.0


async def test_streams_of_one_key_share_one_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker checks a key once per `key_cache_ttl_s` for all its streams (not once per
    stream), and a revocation still closes every one of them."""
    async with serve(tmp_path) as live:
        key = await make_key(live.app)
        access = live.services.access
        checks: list[str] = []
        lookup = access.active_key

        async def counted(key_id: str) -> Any:
            checks.append(key_id)
            return await lookup(key_id)

        monkeypatch.setattr(access, "active_key", counted)
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(client(live, key)) for _ in range(6)]
            for ws in streams:
                await subscribed(ws, TRADES)
            checks.clear()
            started = time.monotonic()
            await asyncio.sleep(1.2)
            ticks = (time.monotonic() - started) / 0.2
            # One stream per check would be ~6 × ticks.
            assert 1 <= len(checks) <= ticks + 2, (len(checks), ticks)
            parsed = parse_key(key)
            assert parsed is not None and set(checks) == {parsed.key_id}
            from cryptopulse.security.management import revoke_key

            await revoke_key(access.db, parsed.key_id, actor="test")
            for ws in streams:
                code, _ = await closed(ws)
                assert code == 1008 and "revoked" in (ws.close_reason or "")


# --- plan limits ------------------------------------------------------------------------


async def test_connections_per_key_over_the_plan_close_4029(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app, plan="tiny")
        other = await make_key(live.app, "bob", plan="tiny")
        async with client(live, key) as first, client(live, key) as second:
            for ws in (first, second):
                await send(ws, op="ping", id=1)
                assert (await recv(ws))["type"] == "pong"
            async with client(live, key) as third:
                code, _ = await closed(third)
                assert code == 4029
            async with client(live, other) as bobs:  # counted per key
                await send(bobs, op="ping", id=1)
                assert (await recv(bobs))["type"] == "pong"
            # An auth op counts the same way as the handshake.
            async with client(live) as fourth:
                await send(fourth, op="auth", token=key)
                code, _ = await closed(fourth)
                assert code == 4029
        # Both slots are free again once the connections closed.
        await asyncio.sleep(0.2)
        async with client(live, key) as again:
            await send(again, op="ping", id=2)
            assert (await recv(again))["type"] == "pong"


async def test_op_rate_per_connection(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app, plan="tiny")
        async with client(live, key) as ws, client(live, key) as calm:
            for i in range(12):
                await send(ws, op="ping", id=i)
            frames = [await recv(ws) for _ in range(12)]
            pongs = [f for f in frames if f["type"] == "pong"]
            limited = [f for f in frames if f.get("code") == "rate_limited"]
            # 4 per second, in fixed one-second windows: a burst straddling two gets <= 8.
            assert 4 <= len(pongs) <= 8 and len(pongs) + len(limited) == 12
            assert all("4 ops per second" in f["message"] for f in limited)
            # The limit is per connection: the other connection of the same key is unaffected.
            await send(calm, op="ping", id=99)
            assert await recv(calm) == {"type": "pong", "id": 99}
            await asyncio.sleep(1.1)
            await send(ws, op="ping", id=100)
            assert await recv(ws) == {"type": "pong", "id": 100}  # the connection stayed


async def test_subscribe_needs_the_scope_and_fits_the_plan(tmp_path: Path) -> None:
    async with serve(tmp_path) as live:
        key = await make_key(live.app, plan="tiny")
        async with client(live, key) as ws:
            await send(ws, op="subscribe", id=1, channels=["grades"])
            refused = await recv(ws)
            assert (refused["id"], refused["code"]) == (1, "forbidden")
            assert "signals:read" in refused["message"]
            channels = [TRADES, "ticker:BTC-USD", "candles:BTC-USD:1m"]
            await send(ws, op="subscribe", id=2, channels=channels)
            refused = await recv(ws)
            assert (refused["id"], refused["code"]) == (2, "too_many_subscriptions")
            await subscribed(ws, *channels[:2])  # the plan's 2 fit
            await live.publish(1)
            assert (await recv(ws))["channel"] == TRADES
