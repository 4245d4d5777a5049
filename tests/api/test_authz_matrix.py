"""Authorization matrix generated from the OpenAPI document: every operation x every scope x
owner vs other tenant. No credential: 401; a missing scope: 403; another tenant's resource:
never 2xx. A route added without a security dependency fails the public-routes check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from authkit import http, make_key, make_settings, running
from fastapi import FastAPI

from cryptopulse.security.scopes import ALL_SCOPES

PUBLIC = {"/healthz", "/readyz", "/metrics"}
BODIES: dict[str, Any] = {
    "/v1/admin/keys": {"name": "matrix", "scopes": ["market:read"], "plan": "enterprise"},
    "/v1/oauth/token": None,  # form, below
}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def required_scopes(op: dict[str, Any]) -> set[str] | None:
    """None: public. Else the scopes the OAuth2 requirement names (maybe none)."""
    security = op.get("security")
    if not security:
        return None
    scopes: set[str] = set()
    for requirement in security:
        scopes.update(requirement.get("OAuth2", []))
    return scopes


async def call(
    client: httpx.AsyncClient, method: str, path: str, key_id: str, headers: dict[str, str]
) -> httpx.Response:
    url = path.replace("{key_id}", key_id)
    url = re.sub(r"\{instrument\}", "coinbase:BTC-USD", url)
    url = re.sub(r"\{[a-z_]+\}", "BTC-USD", url)
    if path == "/v1/oauth/token":
        return await client.post(url, data={"grant_type": "client_credentials"}, headers=headers)
    return await client.request(method, url, json=BODIES.get(path), headers=headers)


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def tenant_keys(app: FastAPI, account: str) -> dict[str, str]:
    keys = {scope: await make_key(app, account, [scope], plan="enterprise") for scope in ALL_SCOPES}
    keys["*"] = await make_key(app, account, sorted(ALL_SCOPES), plan="enterprise")
    return keys


async def test_authorization_matrix(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_failures_per_minute=100_000)
    async with running(settings) as app, http(app) as client:
        spec = app.openapi()
        alice, bob = await tenant_keys(app, "alice"), await tenant_keys(app, "bob")
        ops = operations(spec)
        public = {path for _, path, op in ops if required_scopes(op) is None}
        assert public == PUBLIC, "a route without a security dependency"
        checked = 0
        for method, path, op in ops:
            needed = required_scopes(op)
            if needed is None:
                continue
            victim = await make_key(app, "alice", ["market:read"], plan="enterprise")
            victim_id = victim[9:21]
            # no credential
            response = await call(client, method, path, victim_id, {})
            assert response.status_code == 401, (method, path, response.status_code)
            # the other tenant, with every scope, on alice's resource
            if "{key_id}" in path:
                response = await call(client, method, path, victim_id, bearer(bob["*"]))
                assert not response.is_success, (method, path, "cross-tenant", response.text)
            # each single scope of the owner
            for scope in sorted(ALL_SCOPES):
                response = await call(client, method, path, victim_id, bearer(alice[scope]))
                if needed and scope not in needed:
                    assert response.status_code == 403, (method, path, scope, response.text)
                else:
                    assert response.status_code not in (401, 403), (method, path, scope)
                checked += 1
        assert checked >= 5 * 10
