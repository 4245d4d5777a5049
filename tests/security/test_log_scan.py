"""Secrets never reach the logs: run the real app on 127.0.0.1 with every logger at DEBUG
through the first start, key creation and rotation, token exchange, authenticated REST and
stream use, and every kind of failed authentication; then scan every log record and all of
stdout/stderr for any key, key hash or JWT. The one exception is deliberate: the first
admin key is printed once on stderr (not through logging) at the first start."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.security.keys import KEY_PATTERN, generate_key
from cryptopulse.security.redaction import RedactSecrets, redact
from cryptopulse.settings import Settings

JWT_SECRET = "log-scan-secret-" + "s" * 40
JWT_PATTERN = re.compile(r"eyJ[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]+")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# The test's own clients log in this process too; they are not the server.
CLIENT = ("httpx", "httpcore", "websockets.client")


class Collect(logging.Handler):
    """Every record, as a JSON-ish handler would write it: message, exception, extras."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        self.texts: list[tuple[str, str]] = []  # (logger, text)

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.texts.append((record.name, text + "\n" + repr(record.__dict__)))


@contextmanager
def debug_logs() -> Iterator[Collect]:
    collect = Collect()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(collect)
    try:
        yield collect
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
        for name in UVICORN_LOGGERS:
            logging.getLogger(name).removeHandler(collect)


@asynccontextmanager
async def serve(tmp_path: Path, collect: Collect) -> AsyncIterator[tuple[FastAPI, str]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/scan.db",
        source="sim",
        jwt_secret=JWT_SECRET,
        bootstrap_key=True,
        first_key_file=str(tmp_path / "first-key.txt"),
        log_level="debug",
        key_cache_ttl_s=0.2,
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="debug", access_log=True
    )
    # uvicorn's loggers do not propagate, and the config has just reset their handlers.
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).addHandler(collect)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app, f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Secrets:
    """Everything that must not be logged, gathered while the flows run."""

    def __init__(self) -> None:
        self.values: set[str] = {JWT_SECRET}

    def key(self, key: str) -> str:
        # The key, its secret part and its stored hash.
        self.values |= {key, key[21:-6], hashlib.sha256(key.encode()).hexdigest()}
        return key

    def token(self, token: str) -> str:
        self.values |= {token, token.rsplit(".", 1)[1]}
        return token


async def rest_flows(client: httpx.AsyncClient, first: str, found: Secrets) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {first}"}
    response = await client.post(
        "/v1/admin/keys",
        json={"name": "bot", "scopes": ["market:read"], "plan": "pro", "account": "alice"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    key = found.key(created["key"])
    response = await client.post(f"/v1/admin/keys/{created['key_id']}/rotate", headers=admin)
    assert response.status_code == 201
    rotated = found.key(response.json()["key"])

    tokens = []
    basic = base64.b64encode(f"alice:{key}".encode()).decode()
    for request in (
        {"data": {"grant_type": "client_credentials", "client_secret": key}},
        {"json": {"grant_type": "client_credentials", "client_secret": rotated}},
        {
            "data": {"grant_type": "client_credentials"},
            "headers": {"Authorization": f"Basic {basic}"},
        },
        {"data": {"grant_type": "client_credentials"}, "headers": {"X-API-Key": key}},
    ):
        response = await client.post("/v1/oauth/token", **request)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        tokens.append(found.token(response.json()["access_token"]))

    for credential in (key, rotated, *tokens):
        for path in ("/v1/me", "/v1/instruments", "/v1/usage"):
            response = await client.get(path, headers={"Authorization": f"Bearer {credential}"})
            assert response.status_code == 200, (path, response.text)
    assert (await client.get("/v1/me", headers={"X-API-Key": rotated})).status_code == 200
    return {"key": key, "rotated": rotated, "token": tokens[0], "key_id": created["key_id"]}


async def failed_flows(client: httpx.AsyncClient, made: dict[str, Any], found: Secrets) -> None:
    unknown, _ = generate_key()
    bad_crc = made["key"][:-1] + ("A" if made["key"][-1] != "A" else "B")
    tampered = made["token"][:-3] + "AAA"
    for credential in (found.key(unknown), bad_crc, found.token(tampered), "cpk_live_short"):
        for headers in ({"Authorization": f"Bearer {credential}"}, {"X-API-Key": credential}):
            response = await client.get("/v1/me", headers=headers)
            assert response.status_code == 401
        response = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": credential},
        )
        assert response.status_code in (400, 401, 422)
    found.values.add(bad_crc)
    # A client that puts its key in the URL: refused, and the access log must not keep it.
    response = await client.get(
        "/v1/me", params={"api_key": made["rotated"], "token": made["token"]}
    )
    assert response.status_code == 401
    # A revoked key, and its tokens.
    admin_revoke = await client.delete(
        f"/v1/admin/keys/{made['key_id']}", headers={"Authorization": f"Bearer {made['rotated']}"}
    )
    assert admin_revoke.status_code == 403  # not an admin key
    wrong_scope = await client.get(
        "/v1/admin/audit", headers={"Authorization": f"Bearer {made['token']}"}
    )
    assert wrong_scope.status_code == 403


async def stream_flows(base: str, made: dict[str, Any]) -> None:
    url = f"ws://{base}/v1/stream"
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {made['rotated']}"}
    ) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "id": 1, "channels": ["grades"]}).decode())
        assert orjson.loads(await ws.recv())["code"] == "forbidden"
    async with connect(url) as ws:
        await ws.send(orjson.dumps({"op": "auth", "token": made["token"][:-2] + "xx"}).decode())
        assert orjson.loads(await ws.recv())["code"] == "invalid_token"
        await ws.send(orjson.dumps({"op": "auth", "token": made["token"]}).decode())
        assert orjson.loads(await ws.recv())["type"] == "authenticated"
    # A bad checksum: the last character changed (to "0" unless it is "0" already: a key
    # ends in "0" one time in 62, and then this was the key itself).
    bad = made["key"][:-1] + ("0" if made["key"][-1] != "0" else "1")
    async with connect(url, additional_headers={"X-API-Key": bad}) as ws:
        # Closed at once or, at the latest, when the 5 s auth window ends: wait past it.
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 15)
        assert ws.close_code == 1008
    # In the URL: not accepted (no credential in the handshake), closed after the timeout.
    async with connect(f"{url}?token={made['token']}&api_key={made['rotated']}") as ws:
        await ws.send(orjson.dumps({"op": "ping", "id": 1}).decode())
        assert orjson.loads(await ws.recv())["code"] == "auth_required"


def leaks(text: str, secrets: set[str]) -> list[str]:
    found = [f"secret {s[:12]}…" for s in secrets if s in text]
    found += [f"key {m[:21]}…" for m in KEY_PATTERN.findall(text)]
    found += [f"jwt {m[:20]}…" for m in JWT_PATTERN.findall(text)]
    return found


async def test_no_key_material_in_any_log_or_output(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    found = Secrets()
    with debug_logs() as logs:
        async with serve(tmp_path, logs) as (app, base):
            first = found.key((tmp_path / "first-key.txt").read_text().strip())
            async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as client:
                made = await rest_flows(client, first, found)
                await failed_flows(client, made, found)
                await stream_flows(base, made)
                # Revocation, then the revoked key and its token are refused.
                response = await client.delete(
                    f"/v1/admin/keys/{made['key_id']}",
                    headers={"Authorization": f"Bearer {first}"},
                )
                assert response.status_code == 200
                await asyncio.sleep(0.3)
                for credential in (made["key"], made["token"]):
                    response = await client.get(
                        "/v1/me", headers={"Authorization": f"Bearer {credential}"}
                    )
                    assert response.status_code == 401
    out, err = capfd.readouterr()

    assert len(logs.texts) > 50, "the scan saw no logging: is DEBUG capture working?"
    assert any("GET /v1/me" in t for _, t in logs.texts), "no access log lines were captured"
    leaking = sorted(
        {name for name, t in logs.texts if not name.startswith(CLIENT) and leaks(t, found.values)}
    )
    assert leaking == [], f"records of these loggers hold key material: {leaking}"
    # The deliberate exception: the first key, once, on stderr.
    assert err.count(first) == 1
    err = err.replace(first, "<first key>", 1)
    assert leaks(out, found.values) == []
    assert leaks(err, found.values) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_real_command_at_debug_prints_only_the_first_key_once(tmp_path: Path) -> None:
    """`cryptopulse serve` as a process, with its own logging set-up at debug."""
    port = free_port()
    env = {
        **os.environ,
        "CRYPTOPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/proc.db",
        "CRYPTOPULSE_LOG_LEVEL": "debug",
        "CRYPTOPULSE_ACCESS_LOG": "true",  # off by default; on, it must not keep secrets
        "CRYPTOPULSE_JWT_SECRET": JWT_SECRET,
        "CRYPTOPULSE_INSTRUMENTS": "coinbase:BTC-USD",
    }
    # The console script next to this interpreter: what `make serve` runs.
    command = [str(Path(sys.executable).parent / "cryptopulse"), "serve", "--source", "sim"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    found = Secrets()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    assert process.returncode is None, "the server exited"
                    await asyncio.sleep(0.1)
            first = found.key((tmp_path / "first-key.txt").read_text().strip())  # next to proc.db
            made = await rest_flows(client, first, found)
            await failed_flows(client, made, found)
            await stream_flows(f"127.0.0.1:{port}", made)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    out, err = stdout.decode(), stderr.decode()
    assert "GET /v1/me" in err + out and " DEBUG " in err, "debug logging did not run"
    assert err.count(first) == 1
    assert leaks(out, found.values) == []
    assert leaks(err.replace(first, "<first key>", 1), found.values) == []


def test_redact_keeps_the_public_part_and_drops_tokens() -> None:
    key, public = generate_key()
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    line = f'127.0.0.1:1 - "GET /v1/me?api_key={key}&t={token} HTTP/1.1" 401'
    redacted = redact(line)
    assert redacted == (
        f'127.0.0.1:1 - "GET /v1/me?api_key={public.public}[redacted]&t=[redacted-jwt] '
        'HTTP/1.1" 401'
    )
    assert redact("nothing secret here: cpk_ and eyJ") == "nothing secret here: cpk_ and eyJ"
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "< %s", (line,), None)
    assert RedactSecrets().filter(record) and key not in record.getMessage()
