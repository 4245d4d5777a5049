"""Trader and investor grades per symbol (memory), their history (store), and tokens."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from starlette.responses import Response

from cryptopulse.analytics import AnalyticsService
from cryptopulse.analytics._payloads import grade_body
from cryptopulse.api.analytics_schemas import (
    GradeHistory,
    GradeList,
    GradeOut,
    RegistryToken,
    RegistryTokenList,
)
from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.errors import not_found
from cryptopulse.api.routers._analytics import (
    CursorQuery,
    End,
    Start,
    SymbolPath,
    analytics_of,
    check_range,
    json_response,
    make_router,
    next_time_cursor,
    offset_page,
    time_page,
)
from cryptopulse.api.routers._token_supply import onchain_supplies
from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.tokens import OnchainSupply, Token, fresh_supply, valuation
from cryptopulse.runtime import Services
from cryptopulse.sources.base import now_ms

router = make_router()

MAX_ROWS = 1000
GradeSort = Literal["symbol", "trader", "investor"]


def _sort_key(sort: GradeSort) -> Any:
    def key(body: dict[str, Any]) -> tuple[float, str]:
        part = body[sort]
        # Best first; ungraded symbols last.
        return (-part["grade"] if part is not None else float("inf"), body["symbol"])

    return (lambda body: body["symbol"]) if sort == "symbol" else key


@router.get("/grades", response_model=GradeList, summary="Latest grades")
async def list_grades(
    services: ServicesDep,
    sort: Annotated[GradeSort, Query(description="symbol, or best trader/investor first")] = (
        "symbol"
    ),
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Every graded symbol at the latest recomputation (docs/grades.md has the formulas)."""
    analytics = await analytics_of(services)
    state = analytics.state
    rows = [
        grade_body(g, state.instruments[s], state.grades_24h.get(s))
        for s, g in state.grades.items()
    ]
    rows.sort(key=_sort_key(sort))
    page, next_cursor = offset_page(rows, limit, cursor)
    return json_response({"time": state.as_of, "data": page, "next_cursor": next_cursor})


@router.get("/grades/{symbol}", response_model=GradeOut, summary="Grades of one symbol")
async def get_grade(services: ServicesDep, symbol: SymbolPath) -> Response:
    """Both grades with every factor's raw value and percentile."""
    analytics = await analytics_of(services)
    state = analytics.state
    symbol = symbol.upper()
    grade = state.grades.get(symbol)
    if grade is None:
        raise not_found(f"no grades for {symbol!r}; see /v1/grades")
    body = grade_body(grade, state.instruments[symbol], state.grades_24h.get(symbol), factors=True)
    return json_response(body)


@router.get("/grades/{symbol}/history", response_model=GradeHistory, summary="Grade history")
async def get_grade_history(
    services: ServicesDep,
    symbol: SymbolPath,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Stored grades, oldest first; without `start` the newest, paging back in time."""
    check_range(start, end)
    analytics = await analytics_of(services)
    symbol = symbol.upper()
    start, end, descending = time_page(start, end, cursor)
    rows = await analytics.store.get_grades(
        symbol, start=start, end=end, limit=limit + 1, descending=descending
    )
    if not rows and symbol not in analytics.state.grades and cursor is None:
        raise not_found(f"no grades for {symbol!r}; see /v1/grades")
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    data = [
        {"time": r.time, "instrument": r.instrument, "trader": r.trader, "investor": r.investor}
        for r in rows
    ]
    next_cursor = next_time_cursor([r.time for r in rows], more, descending)
    return json_response({"symbol": symbol, "data": data, "next_cursor": next_cursor})


def _price(services: Services, analytics: AnalyticsService, symbol: str) -> tuple[str, float]:
    """(instrument, price) of a symbol: the live ticker of its chosen instrument, or the
    last close the analytics hold."""
    name = analytics.state.instruments[symbol]
    ticker = services.market.tickers.get(name)
    if ticker is not None and ticker.last is not None:
        return name, ticker.last
    buffer = analytics.series[name]
    return name, buffer.closes[-1]


def _onchain_body(onchain: OnchainSupply | None) -> dict[str, Any] | None:
    if onchain is None:
        return None
    return {
        "chain": onchain.chain,
        "token": onchain.token,
        "block_number": onchain.block_number,
        "time": onchain.time,
        "total_supply": onchain.total,
    }


def token_body(
    services: Services,
    analytics: AnalyticsService,
    token: Token,
    onchain: OnchainSupply | None = None,
) -> dict[str, Any]:
    """A registry token; FDV uses `onchain` (a fresh on-chain total supply) when given."""
    s = token.supply
    diluted = s.max if s.max is not None else s.total
    body: dict[str, Any] = {
        "symbol": token.symbol,
        "name": token.name,
        "sectors": list(token.sectors),
        "supply": {"circulating": s.circulating, "total": s.total, "max": s.max, "as_of": s.as_of},
        "instrument": None,
        "quote": None,
        "price": None,
        "market_cap": None,
        "fdv": None,
        "supply_source": "onchain" if onchain is not None else "registry",
        "fdv_supply": onchain.total if onchain is not None else diluted,
        "onchain_supply": _onchain_body(onchain),
    }
    if token.symbol in analytics.state.instruments:
        name, price = _price(services, analytics, token.symbol)
        value = valuation(token, price, onchain)
        body.update(
            instrument=name,
            quote=parse_instrument(name).quote,
            price=price,
            market_cap=value.market_cap,
            fdv=value.fdv,
        )
    return body


@router.get("/tokens", response_model=RegistryTokenList, summary="Token registry")
async def list_tokens(
    services: ServicesDep,
    sector: Annotated[str | None, Query(max_length=40, description="only this sector")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Registry tokens by symbol, with market cap and FDV where a price is known."""
    analytics = await analytics_of(services)
    registry = analytics.registry
    if sector is not None and sector not in registry.sectors:
        raise not_found(f"unknown sector {sector!r}; see /v1/sectors")
    tokens = [
        t for s, t in sorted(registry.tokens.items()) if sector is None or sector in t.sectors
    ]
    page, next_cursor = offset_page(tokens, limit, cursor)
    supplies, now = await onchain_supplies(services.onchain), now_ms()
    data = [
        token_body(services, analytics, t, fresh_supply(supplies.get(t.symbol, ()), now))
        for t in page
    ]
    return json_response({"data": data, "next_cursor": next_cursor})


@router.get("/tokens/{symbol}", response_model=RegistryToken, summary="One token")
async def get_token(services: ServicesDep, symbol: SymbolPath) -> Response:
    analytics = await analytics_of(services)
    token = analytics.registry.tokens.get(symbol.upper())
    if token is None:
        raise not_found(f"{symbol!r} is not in the token registry; see /v1/tokens")
    supplies = await onchain_supplies(services.onchain)
    onchain = fresh_supply(supplies.get(token.symbol, ()), now_ms())
    return json_response(token_body(services, analytics, token, onchain))
