"""Market data: instruments, tickers, candles, trades.

The ticker and newest-candles routes are the hot paths: their bodies come from
`api/_cache.py` (serialized once, rebuilt on change), and `_market_fast.py` answers their
plain shape ahead of these declared routes, which document them and answer the rest.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import msgspec
import orjson
from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES
from cryptopulse.api._cache import market_bytes, ticker_body
from cryptopulse.api.deps import ServicesDep, require_scope
from cryptopulse.api.errors import PROBLEM_RESPONSES, invalid_field, not_found
from cryptopulse.api.schemas import CandlePage, InstrumentList, TickerList, TickerOut, TradePage
from cryptopulse.domain.instruments import (
    INTERVALS,
    Instrument,
    InvalidInstrument,
    parse_instrument,
)
from cryptopulse.domain.models import Candle
from cryptopulse.runtime import Services

# Past this an int no longer fits the store's 64-bit columns (a 500 instead of a 422).
MAX_TIME = 2**53 - 1

MAX_CANDLES = 1000
MAX_TRADES = 1000
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
SCOPE = "market:read"
InstrumentPath = Annotated[
    str,
    Path(
        description="`exchange:BASE-QUOTE` (venue) or `BASE-QUOTE` (composite)",
        examples=["coinbase:BTC-USD"],
        max_length=80,
    ),
]


class JSONBytes(Response):
    media_type = "application/json"


def _json(body: Any) -> Response:
    return JSONBytes(orjson.dumps(body))


router = APIRouter(
    prefix="/v1",
    tags=["market data"],
    responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES},
    dependencies=[require_scope(SCOPE)],
)


async def _resolve(services: Services, text: str) -> Instrument:
    """Parse and check an instrument: known to the live state or to the store, else 404."""
    try:
        inst = parse_instrument(text)
    except InvalidInstrument as exc:
        raise not_found(str(exc)) from None
    name = str(inst)
    market = services.market
    if name in market.sources or name in market.composites:
        return inst
    stored = {row.instrument for row in await services.store.list_instruments()}
    pairs = {name.split(":", 1)[-1] for name in stored}
    if name in stored or (inst.is_composite and name in pairs):
        return inst
    raise not_found(f"unknown instrument {name!r}; see /v1/instruments")


def source_label(services: Services, instrument: str, fallback: str | None = None) -> str | None:
    """The `source` an answer names for an instrument (`MarketState.source_of`; a feed that
    never delivered, or none, gives `fallback`): the routes' and the hot path's."""
    return services.market.source_of(instrument) or fallback


@router.get("/instruments", response_model=InstrumentList, summary="List instruments")
async def list_instruments(services: ServicesDep) -> Response:
    """Venue instruments (configured, seen live, or in the store) and their composites."""
    rows: dict[str, str | None] = {
        r.instrument: r.source for r in await services.store.list_instruments()
    }
    rows.update(services.market.sources)
    for name in list(rows):
        pair = name.split(":", 1)[-1]
        if ":" in name and pair not in rows:
            rows[pair] = None
    data = []
    for name in sorted(rows):
        inst = parse_instrument(name)
        source = rows[name] if not inst.is_composite else source_label(services, name)
        data.append(
            {
                "instrument": name,
                "exchange": inst.exchange,
                "base": inst.base,
                "quote": inst.quote,
                "composite": inst.is_composite,
                "source": source,
            }
        )
    return _json({"data": data})


@router.get("/tickers", response_model=TickerList, summary="Latest tickers")
async def list_tickers(services: ServicesDep) -> Response:
    market = services.market
    data = [ticker_body(t, market.source_of(name)) for name, t in sorted(market.tickers.items())]
    return _json({"data": data, "source": market.mode})


@router.get("/tickers/{instrument}", response_model=TickerOut, summary="Latest ticker")
async def get_ticker(
    request: Request, services: ServicesDep, instrument: InstrumentPath
) -> Response:
    inst = await _resolve(services, instrument)
    body = market_bytes(request.app.state, services).ticker(str(inst))
    if body is None:
        raise not_found(f"no ticker for {inst} yet")
    return JSONBytes(body)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise invalid_field("cursor", "not a cursor this API issued") from None


def _encode_cursor(direction: str, position: int) -> str:
    return _b64(orjson.dumps({"d": direction, "p": position}))


def _decode_cursor(cursor: str) -> tuple[str, int]:
    body = _unb64(cursor)
    if not isinstance(body, dict) or body.get("d") not in ("a", "d"):
        raise invalid_field("cursor", "not a cursor this API issued")
    position = body.get("p")
    if not isinstance(position, int) or isinstance(position, bool) or abs(position) > MAX_TIME:
        raise invalid_field("cursor", "not a cursor this API issued")
    return str(body["d"]), position


def _decode_trade_cursor(cursor: str) -> tuple[int, str]:
    body = _unb64(cursor)
    if not isinstance(body, dict):
        raise invalid_field("cursor", "not a cursor this API issued")
    time, trade_id = body.get("t"), body.get("i")
    if not isinstance(time, int) or isinstance(time, bool) or not isinstance(trade_id, str):
        raise invalid_field("cursor", "not a cursor this API issued")
    if abs(time) > MAX_TIME:  # beyond the store's 64-bit column: a forged cursor
        raise invalid_field("cursor", "not a cursor this API issued")
    return time, trade_id


@router.get("/candles/{instrument}", response_model=CandlePage, summary="Candles (OHLCV)")
async def get_candles(
    request: Request,
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval, Query(description="candle interval")] = "1m",
    start: Annotated[
        int | None, Query(ge=0, le=MAX_TIME, description="first open_time, ms (inclusive)")
    ] = None,
    end: Annotated[
        int | None, Query(ge=0, le=MAX_TIME, description="last open_time, ms (inclusive)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_CANDLES)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Oldest first. With `start`, pages forward from it; without, returns the newest
    `limit` candles up to `end` and `next_cursor` pages back in time. The open candle
    (`closed: false`) is included as it stands."""
    inst = await _resolve(services, instrument)
    name = str(inst)
    if start is None and end is None and cursor is None:
        return JSONBytes(await newest_page(services, request.app.state, name, interval, limit))
    if start is not None and end is not None and start > end:
        raise invalid_field("start", "start must not be after end")
    if start is not None and end is not None:
        span = (end - start) // INTERVALS[interval]
        if span > services.settings.max_candle_range:
            # Bounds the scan a query can ask for, whatever its `limit` (docs/security.md).
            limit_ = services.settings.max_candle_range
            raise invalid_field("end", f"at most {limit_} candles between start and end")
    descending = start is None
    if cursor is not None:
        direction, position = _decode_cursor(cursor)
        descending = direction == "d"
        if descending:
            end = position - 1
        else:
            start = position + 1
    source = source_label(services, name)
    page = await _candle_page(services, name, interval, limit, start, end, descending, source)
    return JSONBytes(page)


async def newest_page(
    services: Services, state: Any, name: str, interval: str, limit: int
) -> bytes:
    """The newest `limit` candles of a resolved instrument: the cached bytes when valid."""

    source = source_label(services, name)

    async def build() -> bytes:
        return await _candle_page(services, name, interval, limit, None, None, True, source)

    return await market_bytes(state, services).page((name, interval, limit), source, build)


async def _candle_page(
    services: Services,
    name: str,
    interval: str,
    limit: int,
    start: int | None,
    end: int | None,
    descending: bool,
    source: str | None,
) -> bytes:
    rows = await services.store.get_candles(
        name, interval, start=start, end=end, limit=limit + 1, descending=descending
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    next_cursor = None
    if more and rows:
        next_cursor = (
            _encode_cursor("d", rows[0].open_time)
            if descending
            else _encode_cursor("a", rows[-1].open_time)
        )
    return candle_page_bytes(name, interval, source, rows, next_cursor)


class _CandleRow(msgspec.Struct, gc=False):
    """A page's candle: `CandleOut`'s fields, in its order."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    closed: bool


class _CandlePageBody(msgspec.Struct):
    """`CandlePage`'s fields, in its order."""

    instrument: str
    interval: str
    source: str | None
    data: list[_CandleRow]
    next_cursor: str | None


_encode = msgspec.json.Encoder().encode


def candle_page_bytes(
    name: str, interval: str, source: str | None, rows: list[Candle], next_cursor: str | None
) -> bytes:
    """A `CandlePage` body, encoded by msgspec from Structs (1.3× faster than a dict per
    candle through orjson: docs/benchmarks.md, "Serialization")."""
    data = [
        _CandleRow(
            c.open_time,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.quote_volume,
            c.trades,
            c.closed,
        )
        for c in rows
    ]
    return _encode(_CandlePageBody(name, interval, source, data, next_cursor))


@router.get("/trades/{instrument}", response_model=TradePage, summary="Recent trades")
async def get_trades(
    services: ServicesDep,
    instrument: InstrumentPath,
    limit: Annotated[int, Query(ge=1, le=MAX_TRADES)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Newest first, from the store (kept for `trade_retention_hours`); venue instruments
    only. `next_cursor` pages to older trades."""
    inst = await _resolve(services, instrument)
    if inst.is_composite:
        raise invalid_field("instrument", "trades are per venue: use exchange:BASE-QUOTE")
    before = _decode_trade_cursor(cursor) if cursor is not None else None
    rows = await services.store.get_trades(str(inst), limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    data = [
        {
            "trade_id": t.trade_id,
            "price": t.price,
            "size": t.size,
            "side": t.side,
            "time": t.time,
            "received": t.received,
        }
        for t in rows
    ]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _b64(orjson.dumps({"t": last.time, "i": last.trade_id}))
    return _json(
        {
            "instrument": str(inst),
            "source": source_label(services, str(inst)),
            "data": data,
            "next_cursor": next_cursor,
        }
    )
