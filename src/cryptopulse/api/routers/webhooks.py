"""Webhook endpoints of the caller's account (`webhooks:write`): register (the secret is
shown once), list, change, delete, rotate the secret (both sign during the grace period),
the delivery log, manual redelivery and a test-fire. URLs pass the SSRF guard here and
again at every send. Another account's endpoint is a 404, as a missing one."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES, access_of
from cryptopulse.api.alerts_schemas import (
    DeliveryList,
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    NewSecretOut,
    RotateIn,
)
from cryptopulse.api.deps import ServicesDep, WriteWebhooks
from cryptopulse.api.errors import PROBLEM_RESPONSES, ProblemError, invalid_field, not_found
from cryptopulse.api.routers.alerts import (
    LIMIT_RESPONSES,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
)
from cryptopulse.api.routers.alerts import json_response as _json
from cryptopulse.delivery.engine import event_body, new_event_id
from cryptopulse.delivery.sealing import seal
from cryptopulse.delivery.signing import generate_secret
from cryptopulse.delivery.ssrf import UnsafeTarget, resolve_target
from cryptopulse.runtime import Services
from cryptopulse.security import Principal
from cryptopulse.sources.base import now_ms
from cryptopulse.store.alerts import AlertStore, DeliveryRow, EndpointRow, EventRow

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES},
)

EndpointIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_]+$")]
MAX_ID = 2**31 - 1  # delivery ids are 32-bit on PostgreSQL
DeliveryIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def _db(services: Services) -> AlertStore:
    return services.alerts.db if services.alerts is not None else AlertStore(services.store)


def _body(row: EndpointRow, now: int) -> dict[str, Any]:
    rotating = row.previous_until if row.previous_until and row.previous_until > now else None
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "failing_since": row.failing_since,
        "rotating_until": rotating,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _delivery_body(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "created_at": row.created_at,
        "last_attempt_at": row.last_attempt_at,
        "last_status": row.last_status,
        "last_error": row.last_error,
    }


async def _check_url(services: Services, url: str) -> None:
    allow = services.settings.webhook_allow_private_targets
    try:
        await resolve_target(url, allow_private=allow)
    except UnsafeTarget as exc:
        raise invalid_field("url", str(exc)) from None


async def _own(services: Services, principal: Principal, endpoint_id: str) -> EndpointRow:
    row = await _db(services).get_endpoint(principal.account, endpoint_id)
    if row is None:
        raise not_found("no such webhook endpoint")
    return row


def _wake(services: Services) -> None:
    if services.delivery is not None:
        services.delivery.wake.set()


@router.get("", response_model=list[EndpointOut], summary="List webhook endpoints")
async def list_endpoints(services: ServicesDep, principal: WriteWebhooks) -> Response:
    rows = await _db(services).list_endpoints(principal.account)
    now = now_ms()
    return _json([_body(r, now) for r in rows])


@router.post(
    "",
    response_model=NewSecretOut,
    status_code=201,
    summary="Register an endpoint",
    responses=LIMIT_RESPONSES,
)
async def create_endpoint(
    request: Request,
    services: ServicesDep,
    principal: WriteWebhooks,
    body: Annotated[EndpointIn, Body()],
) -> Response:
    """The response holds the signing secret (`whsec_...`) once; keep it."""
    await _check_url(services, body.url)
    allowed = access_of(request).plan(principal.plan).webhooks
    db = _db(services)
    if await db.count_endpoints(principal.account) >= allowed:
        detail = f"the {principal.plan!r} plan allows {allowed} webhook endpoints"
        raise ProblemError(409, "limit-reached", "Plan limit reached", detail)
    secret = generate_secret()
    now = now_ms()
    sealed = seal(secret, services.settings.webhook_secrets_key)
    row = EndpointRow(
        f"wh_{secrets.token_hex(10)}",
        principal.account,
        body.url,
        body.description,
        sealed,
        None,
        None,
        True,
        None,
        None,
        now,
        now,
    )
    await db.insert_endpoint(row)
    return _json({**_body(row, now), "secret": secret}, 201)


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="One webhook endpoint")
async def get_endpoint(
    services: ServicesDep, principal: WriteWebhooks, endpoint_id: EndpointIdPath
) -> Response:
    return _json(_body(await _own(services, principal, endpoint_id), now_ms()))


@router.patch("/{endpoint_id}", response_model=EndpointOut, summary="Change an endpoint")
async def update_endpoint(
    services: ServicesDep,
    principal: WriteWebhooks,
    endpoint_id: EndpointIdPath,
    body: Annotated[EndpointPatch, Body()],
) -> Response:
    """`enabled: true` re-enables an endpoint disabled by a 410 or by failing for days."""
    row = await _own(services, principal, endpoint_id)
    values: dict[str, Any] = {"updated_at": now_ms()}
    if body.url is not None:
        await _check_url(services, body.url)
        values["url"] = body.url
    if body.description is not None:
        values["description"] = body.description
    if body.enabled is not None:
        values["enabled"] = body.enabled
        if body.enabled:
            values |= {"disabled_reason": None, "failing_since": None}
        else:
            values["disabled_reason"] = "disabled by its owner"
    await _db(services).update_endpoint(row.id, **values)
    return _json(_body(await _own(services, principal, endpoint_id), now_ms()))


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint")
async def delete_endpoint(
    services: ServicesDep, principal: WriteWebhooks, endpoint_id: EndpointIdPath
) -> Response:
    if not await _db(services).delete_endpoint(principal.account, endpoint_id):
        raise not_found("no such webhook endpoint")
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate", response_model=NewSecretOut, summary="Rotate the secret")
async def rotate_secret(
    services: ServicesDep,
    principal: WriteWebhooks,
    endpoint_id: EndpointIdPath,
    body: Annotated[RotateIn | None, Body()] = None,
) -> Response:
    """A new secret (shown once); the old one also signs (a second signature in
    `webhook-signature`) for `grace_s` (default `webhook_secret_grace_s`)."""
    row = await _own(services, principal, endpoint_id)
    settings = services.settings
    grace = body.grace_s if body is not None and body.grace_s is not None else None
    grace_s = settings.webhook_secret_grace_s if grace is None else grace
    secret = generate_secret()
    now = now_ms()
    values = {
        "secret": seal(secret, settings.webhook_secrets_key),
        "previous_secret": row.secret if grace_s > 0 else None,
        "previous_until": now + grace_s * 1000 if grace_s > 0 else None,
        "updated_at": now,
    }
    await _db(services).update_endpoint(row.id, **values)
    fresh = await _own(services, principal, endpoint_id)
    return _json({**_body(fresh, now), "secret": secret})


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryList, summary="Delivery log")
async def list_deliveries(
    services: ServicesDep,
    principal: WriteWebhooks,
    endpoint_id: EndpointIdPath,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Deliveries to this endpoint, newest first, with their last attempt."""
    await _own(services, principal, endpoint_id)
    before = decode_cursor(cursor)
    if before is not None and (not isinstance(before, int) or not 0 < before <= MAX_ID):
        raise invalid_field("cursor", "not a cursor this API returned")
    rows = await _db(services).list_deliveries(endpoint_id, before=before, limit=limit)
    following = encode_cursor(rows[-1].id) if len(rows) == limit else None
    return _json({"data": [_delivery_body(r) for r in rows], "next_cursor": following})


def _pending(endpoint: EndpointRow, event_id: str, now: int) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.id,
        "event_id": event_id,
        "account": endpoint.account,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": 0,
        "created_at": now,
    }


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a delivery again",
)
async def redeliver(
    services: ServicesDep,
    principal: WriteWebhooks,
    endpoint_id: EndpointIdPath,
    delivery_id: DeliveryIdPath,
) -> Response:
    """A new delivery of the same event (same `webhook-id`), sent now."""
    endpoint = await _own(services, principal, endpoint_id)
    db = _db(services)
    old = await db.get_delivery(endpoint.id, delivery_id)
    if old is None:
        raise not_found("no such delivery")
    now = now_ms()
    new_id = await db.add_delivery(_pending(endpoint, old.event_id, now))
    _wake(services)
    found = await db.get_delivery(endpoint.id, new_id)
    assert found is not None
    return _json(_delivery_body(found), 202)


@router.post(
    "/{endpoint_id}/test", response_model=DeliveryOut, status_code=202, summary="Test-fire"
)
async def test_fire(
    services: ServicesDep, principal: WriteWebhooks, endpoint_id: EndpointIdPath
) -> Response:
    """Send a `webhook.test` event to this endpoint only (through the normal delivery)."""
    endpoint = await _own(services, principal, endpoint_id)
    now = now_ms()
    event_id = new_event_id(now)
    body = event_body(event_id, "webhook.test", now, {"endpoint_id": endpoint.id})
    event = EventRow(event_id, principal.account, None, "test", now, now, body.decode())
    db = _db(services)
    new_id = await db.add_delivery(_pending(endpoint, event_id, now), event)
    _wake(services)
    found = await db.get_delivery(endpoint.id, new_id)
    assert found is not None
    return _json(_delivery_body(found), 202)
