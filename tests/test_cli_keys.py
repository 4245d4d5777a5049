"""`cryptopulse keys`, run in-process on a temporary SQLite store, against the real app."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI
from typer.testing import CliRunner

from cryptopulse.api import create_app
from cryptopulse.cli import app as cli
from cryptopulse.runtime import Services
from cryptopulse.security.keys import KEY_PATTERN, parse_key
from cryptopulse.settings import Settings
from cryptopulse.store.security import SecurityStore
from cryptopulse.store.sql import SQLStore

JWT_SECRET = "cli-test-secret-" + "y" * 40


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/keys.db"


def keys(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`cryptopulse keys ARGS` with the store URL in the environment, as a user runs it."""
    result = CliRunner().invoke(
        cli,
        ["keys", *args],
        env={"CRYPTOPULSE_DATABASE_URL": db_url(tmp_path), "COLUMNS": "200"},
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def create(tmp_path: Path, *extra: str) -> str:
    """A new key: the one line of stdout that is a key."""
    code, stdout, stderr = keys(
        tmp_path, "create", "--account", "alice", "--name", "bot", "-s", "market:read", *extra
    )
    assert code == 0, stderr
    found = KEY_PATTERN.findall(stdout)
    assert len(found) == 1, stdout
    return str(found[0])


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The real app on the same store the CLI writes to."""
    settings = Settings(
        database_url=db_url(tmp_path), source="sim", bootstrap_key=False, jwt_secret=JWT_SECRET
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        yield app


async def me(app: FastAPI, key: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})


async def audit_actions(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    store = SQLStore(db_url(tmp_path))
    try:
        entries = await SecurityStore(store).list_audit()
    finally:
        await store.close()
    return [(e.action, e.actor, e.target) for e in reversed(entries)]


def test_create_prints_the_key_once_and_list_never_shows_it(tmp_path: Path) -> None:
    key = create(tmp_path, "--plan", "pro", "-s", "signals:read")
    parsed = parse_key(key)
    assert parsed is not None and parsed.prefix == "cpk_live_"

    code, stdout, _ = keys(tmp_path, "list")
    assert code == 0
    assert parsed.key_id in stdout and "alice" in stdout and "active" in stdout
    assert key not in stdout and KEY_PATTERN.search(stdout) is None

    code, stdout, _ = keys(tmp_path, "list", "--json")
    assert code == 0
    (row,) = orjson.loads(stdout)
    assert (row["key_id"], row["account"], row["plan"], row["status"]) == (
        parsed.key_id,
        "alice",
        "pro",
        "active",
    )
    assert row["scopes"] == ["market:read", "signals:read"]
    assert "key_hash" not in row and "key" not in row
    assert key not in stdout


def test_quiet_prints_only_the_key_and_test_keys_have_their_prefix(tmp_path: Path) -> None:
    code, stdout, _ = keys(
        tmp_path, "create", "--account", "ci", "--name", "ci", "-s", "market:read", "--test", "-q"
    )
    assert code == 0
    assert KEY_PATTERN.fullmatch(stdout.strip()) and stdout.startswith("cpk_test_")


def test_bad_requests_exit_1_with_the_reason(tmp_path: Path) -> None:
    code, _, stderr = keys(tmp_path, "create", "--account", "a", "--name", "n", "-s", "root")
    assert code == 1 and "unknown scopes: root" in stderr
    code, _, stderr = keys(
        tmp_path, "create", "--account", "a", "--name", "n", "-s", "admin", "--plan", "gold"
    )
    assert code == 1 and "unknown plan 'gold'" in stderr
    code, _, stderr = keys(tmp_path, "create", "--account", "a b", "--name", "n", "-s", "admin")
    assert code == 1 and "account" in stderr
    code, _, stderr = keys(tmp_path, "revoke", "NoSuchKey123")
    assert code == 1 and "no such key" in stderr
    code, _, stderr = keys(tmp_path, "rotate", "NoSuchKey123")
    assert code == 1 and "no such active key" in stderr
    code, stdout, _ = keys(tmp_path, "list", "--json")
    assert orjson.loads(stdout) == []  # nothing was created by the refused requests


async def test_created_key_works_and_revoked_key_gets_401(tmp_path: Path) -> None:
    key = await asyncio.to_thread(create, tmp_path)
    key_id = key[9:21]
    async with running(tmp_path) as app:
        response = await me(app, key)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["account"], body["key_id"], body["scopes"]) == (
            "alice",
            key_id,
            ["market:read"],
        )

        code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "revoke", key_id)
        assert code == 0 and f"revoked cpk_live_{key_id}" in stdout
        # Every worker re-reads a key within key_cache_ttl_s (1 s).
        await asyncio.sleep(1.1)
        response = await me(app, key)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert key not in response.text

    code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "list")
    assert key_id not in stdout  # revoked keys only with --all
    code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "list", "--all")
    assert key_id in stdout and "revoked" in stdout
    actions = await audit_actions(tmp_path)
    assert [(a, t) for a, _, t in actions] == [("key.create", key_id), ("key.revoke", key_id)]
    assert all(actor.startswith("cli") for _, actor, _ in actions)


async def test_rotate_prints_a_new_key_and_both_work_during_the_grace(tmp_path: Path) -> None:
    old = await asyncio.to_thread(create, tmp_path, "--plan", "pro")
    old_id = old[9:21]
    code, stdout, stderr = await asyncio.to_thread(keys, tmp_path, "rotate", old_id)
    assert code == 0, stderr
    (new,) = KEY_PATTERN.findall(stdout)
    assert new != old and "stays valid for 86400 s" in stderr
    async with running(tmp_path) as app:
        assert (await me(app, old)).status_code == 200
        response = await me(app, new)
        assert response.status_code == 200
        assert (response.json()["account"], response.json()["plan"]["name"]) == ("alice", "pro")

    # Rotating with no grace ends the old key at once; the full key is accepted as the id.
    code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "rotate", new, "--grace-s", "0", "-q")
    assert code == 0
    newest = stdout.strip()
    async with running(tmp_path) as app:
        assert (await me(app, new)).status_code == 401
        assert (await me(app, newest)).status_code == 200
    code, _, stderr = await asyncio.to_thread(keys, tmp_path, "rotate", old_id)
    assert code == 1 and "rotated already" in stderr


async def test_expiring_key(tmp_path: Path) -> None:
    lifetime_s = 0.00006 * 86_400  # 5.184 s
    async with running(tmp_path) as app:
        before = time.time()
        key = await asyncio.to_thread(create, tmp_path, "--expires-days", "0.00006")
        after = time.time()
        assert after - before < lifetime_s - 0.5, "the CLI was too slow to test the expiry"
        assert (await me(app, key)).status_code == 200
        code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "list", "--all", "--json")
        (row,) = orjson.loads(stdout)
        assert (before + lifetime_s) * 1000 - 1 <= row["expires_at"]
        assert row["expires_at"] <= (after + lifetime_s) * 1000 + 1
        # Past the expiry, plus the key cache's 1 s.
        await asyncio.sleep(after + lifetime_s + 1.1 - time.time())
        assert (await me(app, key)).status_code == 401
    code, stdout, _ = await asyncio.to_thread(keys, tmp_path, "list", "--all", "--json")
    assert [row["status"] for row in orjson.loads(stdout)] == ["expired"]


def test_keys_help_lists_the_subcommands(tmp_path: Path) -> None:
    code, stdout, _ = keys(tmp_path, "--help")
    assert code == 0
    for name in ("create", "list", "rotate", "revoke"):
        assert re.search(rf"\b{name}\b", stdout)
