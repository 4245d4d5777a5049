"""Alert rules of the caller's account (`alerts:write`): create, list, update, pause,
resume, delete, and the events they fired. Another account's rule is a 404, as a missing
one. Rule counts are limited per plan (`alert_rules`)."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES, access_of
from cryptopulse.api.alerts_schemas import EventList, RuleIn, RuleList, RuleOut, RulePatch
from cryptopulse.api.deps import ServicesDep, WriteAlerts
from cryptopulse.api.errors import (
    PROBLEM_JSON,
    PROBLEM_RESPONSES,
    Problem,
    ProblemError,
    invalid_field,
    not_found,
)
from cryptopulse.domain.alerts import RuleError, check_params
from cryptopulse.domain.instruments import InvalidInstrument, parse_instrument
from cryptopulse.runtime import Services
from cryptopulse.security import Principal
from cryptopulse.sources.base import now_ms
from cryptopulse.store.alerts import AlertStore, RuleRow

__all__ = ["LIMIT_RESPONSES", "decode_cursor", "encode_cursor", "json_response", "router"]

# Creating past the plan's rule (or endpoint) count.
LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "Plan limit reached", "content": {PROBLEM_JSON: {}}}
}
router = APIRouter(
    prefix="/v1/alerts",
    tags=["alerts"],
    responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES},
)

RuleIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_]+$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=200)]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode()


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid_field("cursor", "not a cursor this API returned") from None


def _db(services: Services) -> AlertStore:
    return services.alerts.db if services.alerts is not None else AlertStore(services.store)


def _body(row: RuleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "params": orjson.loads(row.params),
        "cooldown_ms": row.cooldown_ms,
        "one_shot": row.one_shot,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "last_fired_at": row.last_fired_at,
    }


def _normalized(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Canonical instrument and symbol spellings; every parameter checked (422 on one)."""
    out = dict(params)
    if isinstance(out.get("instrument"), str):
        try:
            out["instrument"] = str(parse_instrument(out["instrument"]))
        except InvalidInstrument as exc:
            raise invalid_field("params.instrument", str(exc)) from None
    for name in ("symbol",):
        if isinstance(out.get(name), str):
            out[name] = out[name].upper()
    if isinstance(out.get("chain"), str):
        out["chain"] = out["chain"].lower()
    try:
        check_params(kind, out)
    except RuleError as exc:
        raise invalid_field(f"params.{exc.field}", exc.message) from None
    return out


async def _own(services: Services, principal: Principal, rule_id: str) -> RuleRow:
    row = await _db(services).get_rule(principal.account, rule_id)
    if row is None:
        raise not_found("no such alert rule")
    return row


async def _save(services: Services, row: RuleRow) -> Response:
    await _db(services).update_rule(row)
    if services.alerts is not None:
        services.alerts.put(row)
    return json_response(_body(row))


@router.get("", response_model=RuleList, summary="List alert rules")
async def list_rules(
    services: ServicesDep, principal: WriteAlerts, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise invalid_field("cursor", "not a cursor this API returned")
    rows = await _db(services).list_rules(principal.account, after=after, limit=limit)
    following = encode_cursor(rows[-1].id) if len(rows) == limit else None
    return json_response({"data": [_body(r) for r in rows], "next_cursor": following})


@router.post(
    "",
    response_model=RuleOut,
    status_code=201,
    summary="Create an alert rule",
    responses=LIMIT_RESPONSES,
)
async def create_rule(
    request: Request,
    services: ServicesDep,
    principal: WriteAlerts,
    body: Annotated[RuleIn, Body()],
) -> Response:
    params = _normalized(body.kind, body.params)
    allowed = access_of(request).plan(principal.plan).alert_rules
    db = _db(services)
    if await db.count_rules(principal.account) >= allowed:
        detail = f"the {principal.plan!r} plan allows {allowed} alert rules"
        raise ProblemError(409, "limit-reached", "Plan limit reached", detail)
    now = now_ms()
    row = RuleRow(
        f"alr_{secrets.token_hex(10)}",
        principal.account,
        body.name,
        body.kind,
        orjson.dumps(params).decode(),
        body.cooldown_ms,
        body.one_shot,
        "active",
        now,
        now,
    )
    await db.insert_rule(row)
    if services.alerts is not None:
        services.alerts.put(row)
    return json_response(_body(row), 201)


@router.get("/events", response_model=EventList, summary="Alert events, newest first")
async def list_events(
    services: ServicesDep, principal: WriteAlerts, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    before = decode_cursor(cursor)
    if before is not None and not isinstance(before, str):
        raise invalid_field("cursor", "not a cursor this API returned")
    rows = await _db(services).list_events(principal.account, before=before, limit=limit)
    following = encode_cursor(rows[-1].id) if len(rows) == limit else None
    data = [orjson.loads(r.body) for r in rows]
    return json_response({"data": data, "next_cursor": following})


@router.get("/{rule_id}", response_model=RuleOut, summary="One alert rule")
async def get_rule(services: ServicesDep, principal: WriteAlerts, rule_id: RuleIdPath) -> Response:
    return json_response(_body(await _own(services, principal, rule_id)))


@router.patch("/{rule_id}", response_model=RuleOut, summary="Change an alert rule")
async def update_rule(
    services: ServicesDep,
    principal: WriteAlerts,
    rule_id: RuleIdPath,
    body: Annotated[RulePatch, Body()],
) -> Response:
    row = await _own(services, principal, rule_id)
    if body.params is not None:
        row.params = orjson.dumps(_normalized(row.kind, body.params)).decode()
    if body.name is not None:
        row.name = body.name
    if body.cooldown_ms is not None:
        row.cooldown_ms = body.cooldown_ms
    if body.one_shot is not None:
        row.one_shot = body.one_shot
    row.updated_at = now_ms()
    return await _save(services, row)


@router.post("/{rule_id}/pause", response_model=RuleOut, summary="Pause an alert rule")
async def pause_rule(
    services: ServicesDep, principal: WriteAlerts, rule_id: RuleIdPath
) -> Response:
    row = await _own(services, principal, rule_id)
    row.status, row.updated_at = "paused", now_ms()
    return await _save(services, row)


@router.post("/{rule_id}/resume", response_model=RuleOut, summary="Resume (or re-arm) a rule")
async def resume_rule(
    services: ServicesDep, principal: WriteAlerts, rule_id: RuleIdPath
) -> Response:
    row = await _own(services, principal, rule_id)
    row.status, row.updated_at = "active", now_ms()
    return await _save(services, row)


@router.delete("/{rule_id}", status_code=204, summary="Delete an alert rule")
async def delete_rule(
    services: ServicesDep, principal: WriteAlerts, rule_id: RuleIdPath
) -> Response:
    if not await _db(services).delete_rule(principal.account, rule_id):
        raise not_found("no such alert rule")
    if services.alerts is not None:
        services.alerts.drop(rule_id)
    return Response(status_code=204)
