"""OAuth2 client credentials (`POST /v1/oauth/token`), `/v1/me` and `/v1/usage`."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from cryptopulse.api._auth import (
    AUTH_RESPONSES,
    access_of,
    principal_of,
    too_many,
    unauthorized,
)
from cryptopulse.api.deps import Authenticated
from cryptopulse.api.errors import PROBLEM_RESPONSES, ProblemError, invalid_field
from cryptopulse.security import Principal
from cryptopulse.security.keys import looks_like_key
from cryptopulse.security.usage import month_of

router = APIRouter(prefix="/v1", tags=["access"], responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES})

_FORM = "application/x-www-form-urlencoded"


class TokenOut(BaseModel):
    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="seconds")
    scope: str = Field(description="space separated")


class PlanOut(BaseModel):
    name: str
    rpm: int
    burst: int
    ws_connections: int
    subscriptions: int
    ws_messages_per_s: int
    alert_rules: int
    webhooks: int
    monthly_quota: int


class UsageDay(BaseModel):
    day: str = Field(examples=["2026-01-31"], description="UTC day")
    requests: int


class UsageOut(BaseModel):
    key_id: str | None
    month: int = Field(description="requests this calendar month (UTC)")
    monthly_quota: int
    days: list[UsageDay]


class MeOut(BaseModel):
    account: str
    key_id: str | None
    via: str = Field(description="key, jwt or anonymous")
    scopes: list[str]
    plan: PlanOut
    token_expires_at: int | None = Field(description="JWT only: epoch seconds")
    usage: UsageOut


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-request", "Bad Request", detail)


async def _token_form(request: Request) -> dict[str, str]:
    """The urlencoded (RFC 6749) or JSON body, one value per field."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise _bad_request("the body is not valid JSON") from None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise _bad_request("the body must be an object of strings")
        return {str(k): v for k, v in body.items()}
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise _bad_request(f"the body must be {_FORM}") from None
    return {k: v[-1] for k, v in fields.items()}


def _basic_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _bad_request("malformed Basic credentials") from None
    return secret or None


def _header_key(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value
    return request.headers.get("x-api-key")


# The form is parsed by hand (RFC 6749 allows form or Basic); these bounds are the ones the
# OpenAPI body below declares.
_FORM_LIMITS = {"client_id": 64, "client_secret": 128, "scope": 200}

_TOKEN_BODY = {
    "required": True,
    "content": {
        _FORM: {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_id": {"type": "string", "maxLength": 64},
                    "client_secret": {"type": "string", "maxLength": 128},
                    "scope": {"type": "string", "maxLength": 200},
                },
            }
        }
    },
}


@router.post(
    "/oauth/token",
    response_model=TokenOut,
    summary="Exchange an API key for a short-lived JWT (client credentials)",
    openapi_extra={
        "requestBody": _TOKEN_BODY,
        # The key may also come as client_secret or in HTTP Basic (client_id:key).
        "security": [{"Bearer": []}, {"APIKey": []}, {"OAuth2": []}],
    },
    responses={400: AUTH_RESPONSES[403] | {"description": "Malformed token request"}},
)
async def token(request: Request) -> Response:
    """`grant_type=client_credentials`; the API key as `client_secret`, in HTTP Basic
    (`client_id:client_secret`), as `Authorization: Bearer` or `X-API-Key`. `scope`
    narrows the token to some of the key's scopes. A token cannot be exchanged again."""
    form = await _token_form(request)
    if form.get("grant_type") != "client_credentials":
        raise invalid_field("grant_type", "only client_credentials is supported")
    for field, most in _FORM_LIMITS.items():
        if len(form.get(field) or "") > most:
            raise invalid_field(field, f"at most {most} characters")
    secret = form.get("client_secret") or _basic_secret(request) or _header_key(request)
    if secret is not None and not looks_like_key(secret):
        raise unauthorized("only an API key can be exchanged for a token")
    principal = await principal_of(request, secret)
    if principal.key_id is None:
        raise unauthorized("send an API key", "missing")
    scopes = principal.scopes
    if form.get("scope"):
        wanted = frozenset(form["scope"].split())
        if not wanted <= principal.scopes:
            raise invalid_field("scope", "asks for scopes the key does not have")
        scopes = wanted
    access = access_of(request)
    decision = await access.admit(principal)
    if not decision.allowed:
        raise too_many(
            "over the plan's rate limit", {k.decode(): v.decode() for k, v in decision.headers()}
        )
    jwt, ttl = access.tokens.issue(principal.key_id, principal.account, scopes, principal.plan)
    body = {
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(sorted(scopes)),
    }
    return Response(
        orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def _usage(request: Request, principal: Principal, days: int) -> dict[str, Any]:
    access = access_of(request)
    plan = access.plan(principal.plan)
    now = time.time()
    if principal.key_id is None:
        return {"key_id": None, "month": 0, "monthly_quota": plan.monthly_quota, "days": []}
    since = (datetime.fromtimestamp(now, UTC) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    counts = await access.db.usage([principal.key_id], min(since, month_of(now)))
    for day, n in access.usage.pending_days({principal.key_id}).items():
        counts[day] = counts.get(day, 0) + n
    month = sum(n for day, n in counts.items() if day >= month_of(now))
    listed = [{"day": d, "requests": n} for d, n in sorted(counts.items()) if d >= since]
    return {
        "key_id": principal.key_id,
        "month": month,
        "monthly_quota": plan.monthly_quota,
        "days": listed,
    }


@router.get("/me", response_model=MeOut, summary="The caller: account, plan, scopes, usage")
async def me(request: Request, principal: Authenticated) -> Response:
    plan = access_of(request).plan(principal.plan)
    body = {
        "account": principal.account,
        "key_id": principal.key_id,
        "via": principal.via,
        "scopes": sorted(principal.scopes),
        "plan": {name: getattr(plan, name) for name in PlanOut.model_fields},
        "token_expires_at": int(principal.expires_at) if principal.expires_at else None,
        "usage": await _usage(request, principal, 1),
    }
    return _json(body)


@router.get("/usage", response_model=UsageOut, summary="Requests per day of the caller's key")
async def usage(
    request: Request,
    principal: Authenticated,
    days: Annotated[int, Query(ge=1, le=90, description="days back, today included")] = 30,
) -> Response:
    """Counted per key per UTC day; written to the store in batches, so another worker's
    last few seconds may be missing."""
    return _json(await _usage(request, principal, days))
