"""JWT negative suite against the real app: every forged or stale token is a 401."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from authkit import JWT_SECRET, http, make_key, make_settings, running  # noqa: E402

from cryptopulse.security.tokens import TokenError, TokenIssuer, key_id_of  # noqa: E402

ISS, AUD = "cryptopulse", "cryptopulse-api"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {
        "iss": ISS,
        "aud": AUD,
        "sub": "KEYID",
        "acct": "alice",
        "scope": "market:read",
        "plan": "pro",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sign(body: dict[str, Any], secret: str = JWT_SECRET, alg: str = "HS256", **header: Any) -> str:
    return jwt.encode(body, secret, algorithm=alg, headers={"kid": key_id_of(secret), **header})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def unsigned(body: dict[str, Any]) -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': key_id_of(JWT_SECRET)})}.{b64(body)}."


def tampered(token: str) -> str:
    header, _, signature = token.split(".")
    body = claims(scope="market:read admin", acct="bob")
    return f"{header}.{b64(body)}.{signature}"


def forged(case: str, good: str, sub: str) -> str:  # noqa: C901  (one branch per case)
    now = int(time.time())
    if case == "alg_none":
        return unsigned(claims(sub=sub))
    if case == "hs_rs_confusion":  # an RS256 header, HMAC-signed with a "public key"
        header = b64({"alg": "RS256", "typ": "JWT", "kid": key_id_of(JWT_SECRET)})
        body = b64(claims(sub=sub))
        sig = jwt.api_jws.get_algorithm_by_name("HS256").sign(
            f"{header}.{body}".encode(), JWT_SECRET.encode()
        )
        return f"{header}.{body}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"
    if case == "hs512":
        return sign(claims(sub=sub), alg="HS512")
    if case == "expired":
        return sign(claims(sub=sub, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    if case == "not_yet_valid":
        return sign(claims(sub=sub, nbf=now + 3600, exp=now + 7200))
    if case == "wrong_aud":
        return sign(claims(sub=sub, aud="someone-else"))
    if case == "wrong_iss":
        return sign(claims(sub=sub, iss="evil"))
    if case == "no_exp":
        return sign(claims(sub=sub, exp=None))
    if case == "unknown_kid":
        return jwt.encode(claims(sub=sub), JWT_SECRET, algorithm="HS256", headers={"kid": "nope"})
    if case == "wrong_secret":
        other = "another-secret-" + "y" * 40
        return jwt.encode(
            claims(sub=sub), other, algorithm="HS256", headers={"kid": key_id_of(JWT_SECRET)}
        )
    if case == "tampered_payload":
        return tampered(good)
    if case == "garbage":
        return "a.b.c"
    raise AssertionError(case)


CASES = [
    "alg_none",
    "hs_rs_confusion",
    "hs512",
    "expired",
    "not_yet_valid",
    "wrong_aud",
    "wrong_iss",
    "no_exp",
    "unknown_kid",
    "wrong_secret",
    "tampered_payload",
    "garbage",
]


async def test_forged_and_stale_tokens_are_401(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, auth_failures_per_minute=1000)) as app:
        key = await make_key(app, scopes=["market:read"])
        async with http(app, key) as client:
            response = await client.post(
                "/v1/oauth/token", data={"grant_type": "client_credentials"}
            )
            assert response.status_code == 200
            good = response.json()["access_token"]
            me = await client.get("/v1/me", headers={"Authorization": f"Bearer {good}"})
            assert me.status_code == 200 and me.json()["via"] == "jwt"
            sub = me.json()["key_id"]
            for case in CASES:
                token = forged(case, good, sub)
                reply = await client.get(
                    "/v1/instruments", headers={"Authorization": f"Bearer {token}"}
                )
                assert reply.status_code == 401, case
                assert reply.headers["content-type"] == "application/problem+json"
                assert token not in reply.text


def test_issuer_verifies_with_previous_secret_by_kid() -> None:
    old = TokenIssuer("old-" + "s" * 40, [], ISS, AUD, 60)
    token, _ = old.issue("K", "alice", frozenset({"market:read"}), "pro")
    rotated = TokenIssuer("new-" + "s" * 40, ["old-" + "s" * 40], ISS, AUD, 60)
    assert rotated.verify(token).account == "alice"
    fresh, _ = rotated.issue("K", "alice", frozenset(), "pro")
    assert jwt.get_unverified_header(fresh)["kid"] == key_id_of("new-" + "s" * 40)
    with pytest.raises(TokenError):
        TokenIssuer("new-" + "s" * 40, [], ISS, AUD, 60).verify(token)


async def test_revoking_a_key_ends_its_tokens(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        admin = await make_key(app, scopes=["market:read", "admin"])
        async with http(app, admin) as client:
            token = (
                await client.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/v1/instruments", headers=bearer)).status_code == 200
            key_id = (await client.get("/v1/me")).json()["key_id"]
            await app.state.services.access.db.update_key(key_id, None, revoked_at=1)
            deadline = time.monotonic() + 1.5  # the per-worker cache holds at most 1 s
            while time.monotonic() < deadline:
                status = (await client.get("/v1/instruments", headers=bearer)).status_code
                if status == 401:
                    break
            assert status == 401
