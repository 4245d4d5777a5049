"""Key administration (`admin` scope). An admin key manages the keys of its own account;
an admin key of the operator account manages every account. Every call is audited."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES, access_of
from cryptopulse.api.deps import AdminScope
from cryptopulse.api.errors import PROBLEM_RESPONSES, ProblemError, invalid_field, not_found
from cryptopulse.security import Principal
from cryptopulse.security.bootstrap import OPERATOR_ACCOUNT
from cryptopulse.security.management import (
    KeyError_,
    create_key,
    now_ms,
    revoke_key,
    rotate_key,
)
from cryptopulse.store.security import AuditEntry, KeyRecord

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={
        **PROBLEM_RESPONSES,
        **AUTH_RESPONSES,
        400: AUTH_RESPONSES[403] | {"description": "The body is not JSON"},
    },
)

KeyIdPath = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z]+$")]


class KeyOut(BaseModel):
    key_id: str
    public: str = Field(description="prefix + id: safe to show and log")
    account: str
    name: str
    scopes: list[str]
    plan: str
    created_at: int
    expires_at: int | None
    last_used: int | None = Field(description="ms; written in batches, may lag seconds")
    revoked_at: int | None
    replaced_by: str | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the API key: shown this once, never again")


class KeyList(BaseModel):
    data: list[KeyOut]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=5, examples=[["market:read"]])
    plan: str = Field("free", max_length=32)
    account: str | None = Field(None, max_length=64, description="operator only; default: yours")
    expires_at: int | None = Field(None, ge=0, le=2**53 - 1, description="ms since the epoch")
    test: bool = Field(False, description="a `cpk_test_` key")


class RotateIn(BaseModel):
    grace_s: int | None = Field(None, ge=0, le=30 * 86_400, description="old key stays valid")


class AuditOut(BaseModel):
    time: int
    actor: str
    action: str
    account: str | None
    target: str | None
    detail: dict[str, Any]


class AuditList(BaseModel):
    data: list[AuditOut]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _key_body(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "public": record.prefix + record.key_id,
        "account": record.account,
        "name": record.name,
        "scopes": record.scopes.split(),
        "plan": record.plan,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used": record.last_used,
        "revoked_at": record.revoked_at,
        "replaced_by": record.replaced_by,
    }


def _actor(principal: Principal) -> str:
    return f"key:{principal.key_id}" if principal.key_id else principal.account


def _is_operator(principal: Principal) -> bool:
    return principal.account == OPERATOR_ACCOUNT


async def _own_key(request: Request, principal: Principal, key_id: str) -> KeyRecord:
    """The key if the caller may manage it; another tenant's key is a 404, as a missing one."""
    record = await access_of(request).db.get_key(key_id)
    if record is None or not (_is_operator(principal) or record.account == principal.account):
        raise not_found("no such key")
    return record


async def _audit_read(
    request: Request, principal: Principal, action: str, account: str | None
) -> None:
    entry = AuditEntry(now_ms(), _actor(principal), action, account, None, "{}")
    await access_of(request).db.add_audit(entry)


@router.get("/keys", response_model=KeyList, summary="List keys")
async def list_keys(
    request: Request,
    principal: AdminScope,
    account: Annotated[str | None, Query(max_length=64, description="operator only")] = None,
) -> Response:
    if not _is_operator(principal):
        account = principal.account
    await _audit_read(request, principal, "admin.list_keys", account)
    records = await access_of(request).db.list_keys(account)
    return _json({"data": [_key_body(r) for r in records]})


@router.post("/keys", response_model=NewKeyOut, status_code=201, summary="Create a key")
async def create(
    request: Request, principal: AdminScope, body: Annotated[KeyIn, Body()]
) -> Response:
    """The response holds the key itself, once. A tenant admin creates keys for its own
    account, with at most its own scopes and its own plan."""
    access = access_of(request)
    account = body.account or principal.account
    if not _is_operator(principal):
        if account != principal.account:
            raise ProblemError(403, "forbidden", "Forbidden", "keys of another account")
        if not set(body.scopes) <= principal.scopes:
            raise invalid_field("scopes", "more than the caller's own scopes")
        if body.plan != principal.plan:
            raise invalid_field("plan", "only the caller's own plan")
    try:
        new = await create_key(
            access.db,
            account=account,
            name=body.name,
            scopes=body.scopes,
            plan=body.plan,
            plans=set(access.plans),
            actor=_actor(principal),
            expires_at=body.expires_at,
            live=not body.test,
        )
    except KeyError_ as exc:
        raise _invalid(str(exc)) from None
    return _json({**_key_body(new.record), "key": new.key}, 201)


def _invalid(message: str) -> ProblemError:
    field = message.split(":")[0].split()[0] if ":" in message else "body"
    return invalid_field(field, message)


@router.get("/keys/{key_id}", response_model=KeyOut, summary="One key")
async def get_key(request: Request, principal: AdminScope, key_id: KeyIdPath) -> Response:
    record = await _own_key(request, principal, key_id)
    await _audit_read(request, principal, "admin.get_key", record.account)
    return _json(_key_body(record))


@router.post("/keys/{key_id}/rotate", response_model=NewKeyOut, status_code=201, summary="Rotate")
async def rotate(
    request: Request,
    principal: AdminScope,
    key_id: KeyIdPath,
    body: Annotated[RotateIn | None, Body()] = None,
) -> Response:
    """A new key with the same account, scopes and plan; the old one stays valid for
    `grace_s` (default `key_rotation_grace_s`), so clients can switch without downtime."""
    await _own_key(request, principal, key_id)
    access = access_of(request)
    grace = body.grace_s if body and body.grace_s is not None else None
    if grace is None:
        grace = access.settings.key_rotation_grace_s
    try:
        new = await rotate_key(access.db, key_id, grace_s=grace, actor=_actor(principal))
    except KeyError_ as exc:
        raise ProblemError(409, "conflict", "Conflict", str(exc)) from None
    return _json({**_key_body(new.record), "key": new.key}, 201)


@router.delete("/keys/{key_id}", response_model=KeyOut, summary="Revoke a key")
async def revoke(request: Request, principal: AdminScope, key_id: KeyIdPath) -> Response:
    """Effective on every worker within `key_cache_ttl_s` (1 s), tokens of the key too."""
    await _own_key(request, principal, key_id)
    record = await revoke_key(access_of(request).db, key_id, actor=_actor(principal))
    return _json(_key_body(record))


@router.get("/audit", response_model=AuditList, summary="Audit log, newest first")
async def audit_log(
    request: Request,
    principal: AdminScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    account = None if _is_operator(principal) else principal.account
    entries = await access_of(request).db.list_audit(account, limit)
    data = [
        {
            "time": e.time,
            "actor": e.actor,
            "action": e.action,
            "account": e.account,
            "target": e.target,
            "detail": orjson.loads(e.detail),
        }
        for e in entries
    ]
    return _json({"data": data})


__all__ = ["router"]
