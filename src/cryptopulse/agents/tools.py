"""The MCP tools: the REST API as a model sees it, with compact results.

Every tool calls the API through the SDK with the caller's own credential, so scopes, plans
and rate limits hold exactly as on REST; a refused call comes back as a tool error that
says what is wrong (`403 Forbidden: this needs the 'signals:read' scope`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from cryptopulse.client import AsyncClient, ProblemError
from cryptopulse.client._routes import IndicatorQuery

__all__ = ["ClientFactory", "build_server"]

# How a tool gets its SDK client: from the HTTP request's credential, or the stdio config.
ClientFactory = Callable[[Context], AsyncClient]
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]

INSTRUCTIONS = """\
Crypto market data and analytics from a self-hosted cryptopulse server.
Instruments are `exchange:BASE-QUOTE` for one venue (`coinbase:BTC-USD`) or `BASE-QUOTE`
for the volume-weighted composite across venues (`BTC-USD`); offline servers publish
simulated data under `sim:` (`sim:BTC-USD`). Symbols are bare assets (`BTC`). Times are
milliseconds since the epoch, UTC. Start with list_instruments when unsure of a name."""


def _round(value: Any) -> Any:
    return round(value, 8) if isinstance(value, float) else value


def _rows(records: list[Any], fields: list[str]) -> dict[str, Any]:
    """A table as columns + rows: far fewer tokens than a list of objects."""
    return {
        "columns": fields,
        "rows": [[_round(getattr(r, f)) for f in fields] for r in records],
    }


async def _call(
    factory: ClientFactory, ctx: Context, fetch: Callable[[AsyncClient], Awaitable[Any]]
) -> Any:
    client = factory(ctx)
    try:
        async with client:
            return await fetch(client)
    except ProblemError as exc:
        detail = f": {exc.detail}" if exc.detail else ""
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors)
        message = f"{exc.status} {exc.title}{detail}" + (f" ({fields})" if fields else "")
        raise ToolError(message) from None


def build_server(factory: ClientFactory) -> MCPServer:
    """An MCP server whose tools read the API through `factory`'s clients."""
    server: MCPServer = MCPServer("cryptopulse", instructions=INSTRUCTIONS)
    _market_tools(server, factory)
    _analytics_tools(server, factory)
    _registry_tools(server, factory)
    _alert_tools(server, factory)
    return server


def _market_tools(server: MCPServer, factory: ClientFactory) -> None:
    @server.tool()
    async def list_instruments(ctx: Context) -> dict[str, Any]:
        """List every instrument the server knows: venue instruments (`exchange:BASE-QUOTE`)
        and composites (`BASE-QUOTE`), with where their data comes from (live, simulated,
        replay, import). Use it to find valid names before calling other tools."""
        page = await _call(factory, ctx, lambda c: c.instruments())
        return _rows(page.data, ["instrument", "composite", "source"])

    @server.tool()
    async def get_price(instrument: str, ctx: Context) -> dict[str, Any]:
        """Current price of one instrument: last trade, best bid and ask, 24 h volume and
        the exchange time of the last update. `instrument` is `coinbase:BTC-USD` (one venue)
        or `BTC-USD` (composite across venues). For many instruments at once use
        get_prices."""
        t = await _call(factory, ctx, lambda c: c.ticker(instrument))
        keep = ("instrument", "last", "bid", "ask", "volume_24h", "time", "source")
        return {k: _round(getattr(t, k)) for k in keep}

    @server.tool()
    async def get_prices(ctx: Context) -> dict[str, Any]:
        """Current last/bid/ask of every instrument in one call (a market overview)."""
        page = await _call(factory, ctx, lambda c: c.tickers())
        return _rows(page.data, ["instrument", "last", "bid", "ask", "time"])

    @server.tool()
    async def get_candles(
        instrument: str, ctx: Context, interval: Interval = "1h", limit: int = 48
    ) -> dict[str, Any]:
        """OHLCV candles (price history) of an instrument, oldest first, the newest
        `limit` (at most 1000) of `interval` (1m 5m 15m 1h 4h 1d). Columns: open time (ms),
        open, high, low, close, base volume, closed (false for the still-forming candle).
        Use it for charts, returns and volatility; for ready-made indicators use
        get_indicators."""
        page = await _call(
            factory, ctx, lambda c: c.candles(instrument, interval=interval, limit=limit)
        )
        fields = ["open_time", "open", "high", "low", "close", "volume", "closed"]
        return {"instrument": page.instrument, "interval": interval, **_rows(page.data, fields)}


def _analytics_tools(server: MCPServer, factory: ClientFactory) -> None:
    @server.tool()
    async def get_indicators(
        instrument: str,
        ctx: Context,
        interval: Interval = "5m",
        names: str | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """Technical indicators on closed candles (newest `limit` points): SMA, EMA, RSI,
        MACD, Bollinger bands, ATR, ADX, Donchian... `names` is comma-separated (e.g.
        `rsi_14,macd`); leave it empty for all. Null values are still warming up."""
        query: IndicatorQuery = {"interval": interval, "limit": limit}
        if names:
            query["names"] = names
        page = await _call(factory, ctx, lambda c: c.indicators(instrument, **query))
        points = [{"time": p.time, **{k: _round(v) for k, v in p.values.items()}}
                  for p in page.data]  # fmt: skip
        return {"instrument": page.instrument, "interval": page.interval, "data": points}

    @server.tool()
    async def get_signals(
        ctx: Context,
        instrument: str | None = None,
        state: Literal["bullish", "bearish", "neutral"] | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """Trading signals (bullish / bearish / neutral with a 0..1 strength and the rule
        that fired: breakout, trend or momentum). Without `instrument`: the latest signal
        of every instrument, optionally only one `state`. With `instrument`: its latest
        signal and its recent changes of state."""
        if instrument is None:
            query: dict[str, Any] = {"limit": limit} | ({"state": state} if state else {})
            page = await _call(factory, ctx, lambda c: c.signals(**query))
            fields = ["instrument", "state", "strength", "rule", "close", "time"]
            return _rows(page.data, fields)
        history = await _call(factory, ctx, lambda c: c.signal_history(instrument, limit=limit))
        latest = history.latest.model_dump(exclude={"indicators"}) if history.latest else None
        return {"latest": latest, **_rows(history.data, ["time", "state", "strength", "rule"])}

    @server.tool()
    async def get_grades(
        ctx: Context,
        symbol: str | None = None,
        sort: Literal["trader", "investor", "symbol"] = "trader",
        limit: int = 20,
    ) -> dict[str, Any]:
        """Grades from 0 to 100: `trader` (short-term momentum and trend) and `investor`
        (longer-term quality: returns, drawdown, liquidity...), with labels and their change
        over 24 h. Without `symbol`: a ranking, best first by `sort`. With `symbol` (e.g.
        `BTC`): that asset's grades and the factor percentiles behind them."""
        if symbol is not None:
            grade = await _call(factory, ctx, lambda c: c.grade(symbol))
            return dict(grade.model_dump(exclude_none=True))
        page = await _call(factory, ctx, lambda c: c.grades(sort=sort, limit=limit))
        rows = [
            [g.symbol, _part(g.trader), _part(g.investor)] for g in page.data
        ]  # fmt: skip
        return {"time": page.time, "columns": ["symbol", "trader", "investor"], "rows": rows}

    @server.tool()
    async def get_levels(
        instrument: str, ctx: Context, interval: Interval = "1h"
    ) -> dict[str, Any]:
        """Support and resistance levels near the current price: price, kind, how many
        times price touched it and a 0..1 strength. Use it to judge stops and targets."""
        levels = await _call(factory, ctx, lambda c: c.levels(instrument, interval=interval))
        fields = ["price", "kind", "touches", "strength"]
        return {"close": levels.close, "time": levels.time, **_rows(levels.data, fields)}

    @server.tool()
    async def get_correlations(
        instrument: str, ctx: Context, window: int = 288, limit: int = 5
    ) -> dict[str, Any]:
        """The instruments whose returns move most and least with `instrument` over the
        last `window` candles (Pearson correlation, -1..1). For diversification and pairs."""
        out = await _call(
            factory, ctx, lambda c: c.correlations(instrument, window=window, limit=limit)
        )
        fields = ["instrument", "correlation", "overlap"]
        return {"most": _rows(out.most, fields), "least": _rows(out.least, fields)}


def _registry_tools(server: MCPServer, factory: ClientFactory) -> None:
    @server.tool()
    async def get_sectors(ctx: Context, sector_id: str | None = None) -> dict[str, Any]:
        """Sector indices (e.g. layer-1, defi, meme): index level, 1h/24h/7d/30d
        performance, breadth and relative-strength rank, for spotting rotation. With
        `sector_id`: one sector with its members and their correlations."""
        if sector_id is not None:
            sector = await _call(factory, ctx, lambda c: c.sector(sector_id))
            return dict(sector.model_dump(exclude={"correlations"}))
        page = await _call(factory, ctx, lambda c: c.sectors())
        rows = [
            [s.id, s.rank, _round(s.equal_index), _perf(s.performance, "24h"),
             _perf(s.performance, "7d"), _round(s.breadth), len(s.members)]
            for s in page.data
        ]  # fmt: skip
        columns = ["id", "rank", "index", "perf_24h", "perf_7d", "breadth", "members"]
        return {"time": page.time, "columns": columns, "rows": rows}

    @server.tool()
    async def get_token_info(symbol: str, ctx: Context) -> dict[str, Any]:
        """What a token is: name, sectors, circulating/total/max supply, price, market cap
        and fully diluted valuation (FDV). `symbol` is the bare asset, e.g. `ETH`."""
        token = await _call(factory, ctx, lambda c: c.token(symbol))
        return dict(token.model_dump(exclude_none=True))


def _part(part: Any) -> float | None:
    return None if part is None else round(float(part.grade), 1)


def _perf(performance: dict[str, Any], window: str) -> float | None:
    value = performance.get(window)
    return None if value is None else _round(value.equal)


def _alert_tools(server: MCPServer, factory: ClientFactory) -> None:
    @server.tool()
    async def list_alerts(ctx: Context, limit: int = 50) -> dict[str, Any]:
        """The caller's alert rules (id, name, kind, params, status: active, paused or
        fired) and the most recent firings. Needs the `alerts:write` scope."""
        rules = await _call(factory, ctx, lambda c: c.list_alerts(limit=limit))
        events = await _call(factory, ctx, lambda c: c.alert_events(limit=10))
        return {
            **_rows(rules.data, ["id", "name", "kind", "params", "status", "last_fired_at"]),
            "recent_firings": [
                {"rule": e.data.get("rule_id"), "time": e.time, "type": e.type} for e in events.data
            ],  # fmt: skip
        }

    @server.tool()
    async def create_alert(
        name: str,
        kind: Literal[
            "price_cross",
            "pct_move",
            "volume_spike",
            "signal_change",
            "grade_band",
            "grade_move",
            "level_break",
            "sector_rotation",
            "correlation_breakdown",
            "large_transfer",
        ],
        params: dict[str, Any],
        ctx: Context,
        cooldown_ms: int = 0,
        one_shot: bool = False,
    ) -> dict[str, Any]:
        """Create an alert rule for the caller; it fires to the caller's webhooks and the
        `alerts` stream. `params` by kind:
        price_cross {instrument, level, direction: up|down|either};
        pct_move {instrument, percent, window_ms, direction};
        volume_spike {instrument, z (3), window (20 candles)};
        signal_change {instrument, interval (5m), to: bullish|bearish|neutral|any};
        grade_band {symbol, grade: trader|investor, direction};
        grade_move {symbol, grade, points};
        level_break {instrument, side: support|resistance|either};
        sector_rotation {sector, top, direction: enters|leaves|either};
        correlation_breakdown {sector and/or symbol};
        large_transfer {chain, token, min_amount}.
        `one_shot` deactivates it after the first firing. Needs `alerts:write`."""
        body = {"name": name, "kind": kind, "params": params,
                "cooldown_ms": cooldown_ms, "one_shot": one_shot}  # fmt: skip
        rule = await _call(factory, ctx, lambda c: c.create_alert(body))
        return dict(rule.model_dump())

    @server.tool()
    async def get_prediction(
        instrument: str, ctx: Context, interval: Interval | None = None
    ) -> dict[str, Any]:
        """Model probability that the close `horizon` candles ahead is above the latest
        close (0..1; 0.5 is no edge), with the model that made it. A statistical estimate,
        not advice."""
        out = await _call(factory, ctx, lambda c: c.prediction(instrument, interval=interval))
        return dict(out.model_dump())
