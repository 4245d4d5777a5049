"""Authentication and authorization of REST requests, declared for the OpenAPI document.

A credential is `Authorization: Bearer <API key or JWT>` or `X-API-Key: <API key>`. The
dependency answers 401 (no or bad credential), 403 (missing scope) or 429 (rate limit,
quota, or too many failed authentications from one address), in that order, and leaves
the rate decision in the request scope for `SecurityHeadersMiddleware` to send its headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Depends
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2,
    SecurityScopes,
)
from starlette.requests import HTTPConnection
from starlette.types import Scope

from cryptopulse.api.errors import PROBLEM_JSON, Problem, ProblemError
from cryptopulse.security import AuthError, Principal, QuotaExceeded
from cryptopulse.security.access import AccessControl
from cryptopulse.security.ratelimit import RateDecision
from cryptopulse.security.scopes import SCOPE_DESCRIPTIONS

__all__ = ["AUTH_RESPONSES", "authorize", "authorize_scope", "principal_of", "unauthorized"]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="An API key (`cpk_live_...`) or a JWT from `POST /v1/oauth/token`.",
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="APIKey", description="An API key."
)
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/v1/oauth/token", scopes=SCOPE_DESCRIPTIONS
        )
    ),
    scheme_name="OAuth2",
    description="Client credentials: exchange an API key for a short-lived JWT.",
    auto_error=False,
)

_WWW_AUTHENTICATE = 'Bearer realm="cryptopulse"'


def unauthorized(detail: str, code: str = "invalid_token") -> ProblemError:
    header = _WWW_AUTHENTICATE if code == "missing" else f'{_WWW_AUTHENTICATE}, error="{code}"'
    return ProblemError(401, "unauthorized", "Unauthorized", detail, {"WWW-Authenticate": header})


def forbidden(scope: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Forbidden", f"this needs the {scope!r} scope")


def too_many(detail: str, headers: dict[str, str]) -> ProblemError:
    return ProblemError(429, "rate-limited", "Too Many Requests", detail, headers)


def access_of(conn: HTTPConnection) -> AccessControl:
    access: AccessControl = conn.app.state.services.access
    return access


def client_address(conn: HTTPConnection) -> str:
    return _address(conn.scope)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def principal_of(conn: HTTPConnection, credential: str | None) -> Principal:
    """The caller of `conn` (REST or WebSocket handshake); ProblemError 401/429 otherwise."""
    return await _principal(access_of(conn), conn.scope, credential)


async def _principal(access: AccessControl, scope: Scope, credential: str | None) -> Principal:
    # A credential this worker already verified is no guess: it skips the brute-force
    # guard, whose check is a Redis call in scale-out (one per request otherwise).
    principal = access.verified(credential) if credential else None
    return principal if principal is not None else await _unverified(access, scope, credential)


async def _unverified(access: AccessControl, scope: Scope, credential: str | None) -> Principal:
    """The caller without a credential, or with one this worker does not trust yet."""
    if not credential:
        anonymous = access.anonymous()
        if anonymous is None:
            raise unauthorized("send an API key or a token", "missing")
        return anonymous
    address = _address(scope)
    if await access.limiter.auth_blocked(address):
        raise too_many("too many failed authentications", {"Retry-After": "60"})
    try:
        return await access.authenticate(credential)
    except AuthError as exc:
        await access.limiter.auth_failed(address)
        raise unauthorized(exc.message, exc.code) from None


def credential_of(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return api_key or None


async def authorize(
    security_scopes: SecurityScopes,
    conn: HTTPConnection,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    api_key: str | None = Depends(_api_key),  # noqa: B008
    _oauth: str | None = Depends(_oauth2),  # noqa: B008  (declares the flow for OpenAPI)
) -> Principal:
    """Authenticate, check `security_scopes`, count the request against the plan."""
    return await admit_request(conn, credential_of(bearer, api_key), security_scopes.scopes)


async def authorize_scope(app: Any, scope: Scope, scopes: Sequence[str]) -> Principal:
    """`authorize` without FastAPI's dependency solving, for the hot requests answered
    ahead of the stack (`api/_hot.py`): the same credential headers, checks, errors and
    rate-limit headers."""
    access: AccessControl = app.state.services.access
    return await _admit(access, scope, credential_in(scope), scopes)


def credential_in(scope: Scope) -> str | None:
    """`credential_of(_bearer(conn), _api_key(conn))` read from the raw headers: the first
    `Authorization: Bearer <credential>` (scheme in any case), else the first `X-API-Key`."""
    authorization: bytes | None = None
    api_key: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization if authorization is not None else value
        elif name == b"x-api-key":
            api_key = api_key if api_key is not None else value
    if authorization:
        scheme, _, param = authorization.decode("latin-1").partition(" ")
        credential = param.strip()
        if scheme.lower() == "bearer" and credential:
            return credential
    return api_key.decode("latin-1") if api_key else None


async def admit_request(
    conn: HTTPConnection, credential: str | None, scopes: Sequence[str]
) -> Principal:
    """Authenticate `credential`, check `scopes`, count the request against the plan and
    leave the rate-limit headers in the scope; ProblemError 401/403/429 otherwise."""
    return await _admit(access_of(conn), conn.scope, credential, scopes)


async def _admit(
    access: AccessControl, scope: Scope, credential: str | None, scopes: Sequence[str]
) -> Principal:
    # A credential this worker verified and still trusts: no coroutine for it.
    principal = access.verified(credential) if credential else None
    if principal is None:
        principal = await _unverified(access, scope, credential)
    _check_scopes(principal, scopes)
    try:
        # In process, counted without an await (no I/O); on Redis, one round trip.
        decision = access.admit_now(principal)
        if decision is None:
            decision = await access.admit(principal)
    except QuotaExceeded as exc:
        raise _over_quota(exc) from None
    _keep(scope, principal, decision)
    return principal


def admitted_now(access: AccessControl, scope: Scope, scopes: Sequence[str]) -> RateDecision | None:
    """`authorize_scope` without an await where it needs no I/O: a credential this worker
    verified and still trusts, counted by the limiter in this process. The request's rate
    decision, counted (ProblemError 403/429 as `authorize_scope`); None, with nothing
    checked or counted, where `authorize_scope` must be awaited instead."""
    credential = credential_in(scope)
    principal = access.verified(credential) if credential else None
    if principal is None or not access.limiter.local:
        return None
    _check_scopes(principal, scopes)
    try:
        decision = access.admit_now(principal)
    except QuotaExceeded as exc:
        raise _over_quota(exc) from None
    assert decision is not None  # the limiter is local
    _keep(scope, principal, decision)
    return decision


def _check_scopes(principal: Principal, scopes: Sequence[str]) -> None:
    for name in scopes:
        if not principal.has(name):
            raise forbidden(name)


def _over_quota(exc: QuotaExceeded) -> ProblemError:
    return too_many(str(exc), {"Retry-After": str(exc.retry_after_s)})


def _keep(scope: Scope, principal: Principal, decision: RateDecision) -> None:
    """Refuse an over-limit request (429); leave the decision in the scope for the
    rate-limit headers of the response."""
    if not decision.allowed:
        raise too_many(
            f"over the {principal.plan!r} plan's rate limit",
            {k.decode(): v.decode() for k, v in decision.headers()},
        )
    scope.setdefault("state", {})["ratelimit"] = decision


_RATE_HEADERS: dict[str, Any] = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("RateLimit-Policy", 'IETF draft: `"minute";q=120;w=60, "burst";q=20;w=1`'),
        ("RateLimit", 'IETF draft: `"minute";r=<remaining>;t=<seconds to reset>`'),
        ("X-RateLimit-Limit", "requests per minute of the plan"),
        ("X-RateLimit-Remaining", "requests left in the current window"),
        ("X-RateLimit-Reset", "when the window resets, epoch seconds"),
    )
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {}},
    }
    if headers:
        response["headers"] = headers
    return response


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    # Routes with a body answer this when it does not parse (FastAPI's own check).
    400: _problem("Malformed request: the body is not valid JSON or form data"),
    401: _problem(
        "Missing, invalid, expired or revoked credential",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: _problem("The credential lacks the scope this needs"),
    429: _problem(
        "Over the plan's rate limit or monthly quota",
        {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}},
    ),
}
