"""The hot market routes' fast path: plain Starlette routes placed first in the app.

`GET /v1/tickers/{i}` and the newest page of `GET /v1/candles/{i}` are the most requested
routes. Declared as FastAPI routes (`market.py`, which documents them in OpenAPI) each
request pays FastAPI's dependency solving and its included-router matching, several times
the cost of the answer itself, which is cached bytes (`api/_cache.py`). The routes here
match only the plain shape of those requests:

- the path's instrument is canonical and live in this process (so `market._resolve` would
  accept it without a store read), and, for a ticker, it has a ticker;
- the candles query has no `start`, `end` or `cursor`, and `interval` / `limit` are in
  their plain valid forms (`limit=100`, not `limit=+100` or `limit=1e2`).

Anything else does not match here and goes on to the declared route, which validates and
answers it as always. What matches is answered exactly as the declared route would: the
same authentication, scope check, rate limit and headers (`authorize_request`), the same
problem documents on errors (the app's exception handlers), the same bytes.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from cryptopulse.api._auth import authorize_request
from cryptopulse.api._cache import market_bytes
from cryptopulse.api.routers.market import MAX_CANDLES, SCOPE, Interval, JSONBytes, newest_page
from cryptopulse.domain.instruments import InvalidInstrument, parse_instrument
from cryptopulse.runtime import Services

__all__ = ["fast_routes"]

_INTERVALS = frozenset(get_args(Interval))
_LIMIT = re.compile(rb"[1-9][0-9]{0,3}")
_SHAPE = "cryptopulse.fast"  # scope key: what `matches` found, for the endpoint


def _services(scope: Scope) -> Services | None:
    app = scope.get("app")
    return getattr(app.state, "services", None) if app is not None else None


def _known(services: Services, name: str) -> bool:
    """`name` is canonical and live, so `_resolve` would accept it without the store."""
    market = services.market
    return (name in market.sources or name in market.composites) and _canonical(name)


_CANONICAL: dict[str, bool] = {}  # live instrument names only: bounded by the market


def _canonical(name: str) -> bool:
    canonical = _CANONICAL.get(name)
    if canonical is None:
        try:
            canonical = str(parse_instrument(name)) == name
        except InvalidInstrument:
            canonical = False
        if len(_CANONICAL) < 100_000:
            _CANONICAL[name] = canonical
    return canonical


def newest_page_query(query: bytes) -> tuple[str, int] | None:
    """(interval, limit) of a plain newest-page query string, else None."""
    interval, limit = "1m", 100
    if not query:
        return interval, limit
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"interval" and value.decode("latin-1") in _INTERVALS:
            interval = value.decode()
        elif name == b"limit" and _LIMIT.fullmatch(value) and int(value) <= MAX_CANDLES:
            limit = int(value)
        else:
            return None
    return interval, limit


class _FastRoute(Route):
    """Matches (FULL) only a GET this fast path answers; otherwise NONE, never PARTIAL,
    so the declared route sees every other request, 405s included."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        services = _services(scope)
        name = child["path_params"]["instrument"]
        if services is None or not _known(services, name):
            return Match.NONE, {}
        shape = self.accepts(scope, services, name)
        if shape is None:
            return Match.NONE, {}
        child[_SHAPE] = shape
        child["route"] = self  # metrics label by template, as for the declared route
        return match, child

    def accepts(self, scope: Scope, services: Services, name: str) -> Any:
        raise NotImplementedError


class _TickerRoute(_FastRoute):
    def accepts(self, scope: Scope, services: Services, name: str) -> Any:
        # The bytes as of the match: the request is answered with the ticker of the moment
        # it was routed.
        return market_bytes(scope["app"].state, services).ticker(name)


class _CandlesRoute(_FastRoute):
    def accepts(self, scope: Scope, services: Services, name: str) -> Any:
        return newest_page_query(scope.get("query_string", b""))


async def _ticker(request: Request) -> Response:
    await authorize_request(request, (SCOPE,))
    return JSONBytes(request.scope[_SHAPE])


async def _candles(request: Request) -> Response:
    await authorize_request(request, (SCOPE,))
    state = request.app.state
    interval, limit = request.scope[_SHAPE]
    name = request.path_params["instrument"]
    return JSONBytes(await newest_page(state.services, state, name, interval, limit))


def fast_routes() -> list[BaseRoute]:
    """The routes to put first in the app's route list (`create_app` does)."""
    return [
        _TickerRoute("/v1/tickers/{instrument}", _ticker, include_in_schema=False),
        _CandlesRoute("/v1/candles/{instrument}", _candles, include_in_schema=False),
    ]
