"""What the analytics routers share: the service, instrument checks, cursors, JSON bytes."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from cryptopulse.analytics import AnalyticsService
from cryptopulse.api._auth import AUTH_RESPONSES
from cryptopulse.api.deps import require_scope
from cryptopulse.api.errors import PROBLEM_RESPONSES, ProblemError, invalid_field, not_found
from cryptopulse.domain.instruments import Instrument, InvalidInstrument, parse_instrument
from cryptopulse.runtime import Services

Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
InstrumentPath = Annotated[
    str,
    Path(
        description="`exchange:BASE-QUOTE` (venue) or `BASE-QUOTE` (composite)",
        examples=["binance:ETH-BTC"],
        max_length=80,
    ),
]
SymbolPath = Annotated[
    str, Path(description="base asset symbol", examples=["ETH"], min_length=1, max_length=20)
]
# Past this an int no longer fits the store's 64-bit columns (a 500 instead of a 422).
MAX_TIME = 2**53 - 1
Start = Annotated[int | None, Query(ge=0, le=MAX_TIME, description="first time, ms (inclusive)")]
End = Annotated[int | None, Query(ge=0, le=MAX_TIME, description="last time, ms (inclusive)")]
CursorQuery = Annotated[str | None, Query(max_length=300)]

# How long a request waits for the start-up load of the analytics before a 503.
READY_WAIT_S = 30.0


def make_router() -> APIRouter:
    """An analytics router: under /v1, the `signals:read` scope, problem responses."""
    return APIRouter(
        prefix="/v1",
        tags=["analytics"],
        responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES},
        dependencies=[require_scope("signals:read")],
    )


class JSONBytes(Response):
    media_type = "application/json"


def json_response(body: Any) -> Response:
    return JSONBytes(orjson.dumps(body))


async def analytics_of(services: Services) -> AnalyticsService:
    """The running analytics service, once it has loaded history (else a 503)."""
    analytics = services.analytics
    if analytics is None:
        raise ProblemError(503, "analytics-disabled", "Service Unavailable", "analytics is off")
    if not await analytics.wait_ready(READY_WAIT_S):
        raise ProblemError(
            503,
            "warming-up",
            "Service Unavailable",
            "analytics is still loading history; retry shortly",
            headers={"Retry-After": "5"},
        )
    return analytics


async def resolve(services: Services, text: str) -> Instrument:
    """A known instrument (live, or with rows in the store), else 404."""
    try:
        inst = parse_instrument(text)
    except InvalidInstrument as exc:
        raise not_found(str(exc)) from None
    name = str(inst)
    market = services.market
    if name in market.sources or name in market.composites:
        return inst
    stored = {row.instrument for row in await services.store.list_instruments()}
    pairs = {n.split(":", 1)[-1] for n in stored}
    if name in stored or (inst.is_composite and name in pairs):
        return inst
    raise not_found(f"unknown instrument {name!r}; see /v1/instruments")


def check_range(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise invalid_field("start", "start must not be after end")


def encode_cursor(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(cursor: str, keys: dict[str, type]) -> dict[str, Any]:
    """The fields of a cursor we issued, each of the expected type, or a 422 on `cursor`."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise invalid_field("cursor", "not a cursor this API issued") from None
    if not isinstance(body, dict):
        raise invalid_field("cursor", "not a cursor this API issued")
    for key, kind in keys.items():
        value = body.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise invalid_field("cursor", "not a cursor this API issued")
        if isinstance(value, int) and not 0 <= value <= MAX_TIME:
            raise invalid_field("cursor", "not a cursor this API issued")
    return body


def time_page(
    start: int | None, end: int | None, cursor: str | None
) -> tuple[int | None, int | None, bool]:
    """(start, end, descending) of a time-ordered page: without `start` the newest rows come
    first and the cursor pages back in time; with it, forward (as /v1/candles does)."""
    descending = start is None
    if cursor is not None:
        body = decode_cursor(cursor, {"d": str, "p": int})
        if body["d"] not in ("a", "d"):
            raise invalid_field("cursor", "not a cursor this API issued")
        descending = body["d"] == "d"
        if descending:
            end = body["p"] - 1
        else:
            start = body["p"] + 1
    return start, end, descending


def next_time_cursor(times: list[int], more: bool, descending: bool) -> str | None:
    """Cursor after a page whose row times are `times` (oldest first)."""
    if not more or not times:
        return None
    if descending:
        return encode_cursor({"d": "d", "p": times[0]})
    return encode_cursor({"d": "a", "p": times[-1]})


def offset_page(items: list[Any], limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """A page of an in-memory list by position (the cursor holds the next offset)."""
    offset = decode_cursor(cursor, {"o": int})["o"] if cursor is not None else 0
    if offset < 0:
        raise invalid_field("cursor", "not a cursor this API issued")
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return page, encode_cursor({"o": offset + limit}) if more else None
