"""Binance spot (``stream.binance.com``, and Binance-compatible hosts): parser and live source.

Streams: ``<symbol>@aggTrade`` → Trade, ``<symbol>@bookTicker`` → Ticker (``trade`` and
``24hrTicker`` events are parsed too). Connections go to ``{ws_url}/stream`` and subscribe
with ``SUBSCRIBE`` requests, so frames arrive wrapped as ``{"stream":..., "data":...}``.
Aggregate trade ids ``a`` are consecutive per symbol: a jump is a gap, backfilled from
``GET /api/v3/aggTrades?symbol=&fromId=&limit=1000``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from cryptopulse.domain.instruments import normalize_asset, parse_instrument
from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources._live import LiveOptions, TradeIds, chunked, run_session
from cryptopulse.sources.base import Backoff, EventSink, FeedStatus, SourceKind, now_ms

log = logging.getLogger(__name__)

EXCHANGE = "binance"
# Binance: at most 1024 streams per connection and 5 incoming messages per second.
MAX_STREAMS_PER_CONNECTION = 1024
STREAMS_PER_SUBSCRIBE = 200
SUBSCRIBE_PAUSE_S = 0.25
STREAM_KINDS = ("aggTrade", "bookTicker")
REST_PAGE = 1000
MAX_BACKFILL_PAGES = 10

# Quote assets, longest first so that USDT wins over USD and FDUSD over USD.
QUOTE_ASSETS: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "BUSD",
            "TUSD",
            "FDUSD",
            "USDP",
            "USDS",
            "DAI",
            "PAX",
            "VAI",
            "AEUR",
            "EURI",
            "BTC",
            "ETH",
            "BNB",
            "XRP",
            "TRX",
            "DOGE",
            "DOT",
            "EUR",
            "GBP",
            "TRY",
            "BRL",
            "AUD",
            "RUB",
            "UAH",
            "NGN",
            "ZAR",
            "IDRT",
            "BIDR",
            "BKRW",
            "JPY",
            "PLN",
            "RON",
            "ARS",
            "MXN",
            "COP",
            "CZK",
            "USD",
        ),  # fmt: skip
        key=len,
        reverse=True,
    )
)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``NKNUSDT`` → (``NKN``, ``USDT``) by the longest known quote suffix."""
    symbol = symbol.upper()
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return normalize_asset(symbol[: -len(quote)]), quote
    raise ValueError(f"cannot split Binance symbol {symbol!r} into base and quote")


def instrument_of(symbol: str, symbols: Mapping[str, str] | None = None) -> str:
    """The instrument for a symbol: from `symbols` (SYMBOL → instrument) when known."""
    if symbols is not None and (known := symbols.get(symbol.upper())) is not None:
        return known
    base, quote = split_symbol(symbol)
    return f"{EXCHANGE}:{base}-{quote}"


def symbol_of(instrument: str) -> str:
    parsed = parse_instrument(instrument)
    return f"{parsed.base}{parsed.quote}"


def parse_agg_trade(data: Mapping[str, Any], instrument: str, received_ms: int) -> Trade:
    """An ``aggTrade`` event (or a REST aggTrades row). ``m`` true: the buyer was the maker,
    so the taker sold.

    ``{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000",
    "q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}``
    """
    return Trade(  # positional: keywords cost a quarter of the construction
        instrument,
        str(data["a"]),
        float(data["p"]),
        float(data["q"]),
        "sell" if data["m"] else "buy",
        int(data["T"]),
        received_ms,
    )


def parse_raw_trade(data: Mapping[str, Any], instrument: str, received_ms: int) -> Trade:
    """A ``trade`` event: ``{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001",
    "q":"100","T":123456785,"m":true,"M":true}``"""
    return Trade(
        instrument,
        str(data["t"]),
        float(data["p"]),
        float(data["q"]),
        "sell" if data["m"] else "buy",
        int(data["T"]),
        received_ms,
    )


def parse_book_ticker(data: Mapping[str, Any], instrument: str, received_ms: int) -> Ticker:
    """A ``bookTicker`` event; spot sends no time, so receipt time stands in.

    ``{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000",
    "A":"3199.00000000"}``
    """
    time = data.get("T") or data.get("E") or received_ms
    return Ticker(
        instrument,
        float(data["b"]),
        float(data["a"]),
        None,
        float(data["B"]),
        float(data["A"]),
        None,
        int(time),
        received_ms,
    )


def parse_24hr_ticker(data: Mapping[str, Any], instrument: str, received_ms: int) -> Ticker:
    """A ``24hrTicker`` event: ``{"e":"24hrTicker","E":123456789,"s":"BNBBTC","c":"0.0025",
    "b":"0.0024","B":"10","a":"0.0026","A":"100","v":"10000", ...}``"""
    return Ticker(
        instrument,
        float(data["b"]),
        float(data["a"]),
        float(data["c"]),
        float(data["B"]),
        float(data["A"]),
        float(data["v"]),
        int(data["E"]),
        received_ms,
    )


def parse_decoded(
    msg: Any, received_ms: int, symbols: Mapping[str, str] | None = None
) -> list[Trade | Ticker]:
    """Events in one decoded message, combined-stream wrapped or raw; others give []."""
    if not isinstance(msg, dict):
        return []
    data = msg.get("data", msg)
    if not isinstance(data, dict) or "s" not in data:
        return []
    instrument = instrument_of(data["s"], symbols)
    event = data.get("e")
    if event == "aggTrade":
        return [parse_agg_trade(data, instrument, received_ms)]
    if event == "trade":
        return [parse_raw_trade(data, instrument, received_ms)]
    if event == "24hrTicker":
        return [parse_24hr_ticker(data, instrument, received_ms)]
    if event is None and "B" in data and "A" in data and "u" in data:
        return [parse_book_ticker(data, instrument, received_ms)]
    return []


def parse_message(
    raw: bytes | str, received_ms: int, symbols: Mapping[str, str] | None = None
) -> list[Trade | Ticker]:
    """Events in one raw frame (samples in the `parse_*` docstrings)."""
    return parse_decoded(orjson.loads(raw), received_ms, symbols)


def subscribe_messages(streams: Sequence[str], first_id: int = 1) -> list[str]:
    """``{"method":"SUBSCRIBE","params":["nknusdt@aggTrade",...],"id":1}`` per chunk."""
    return [
        orjson.dumps({"method": "SUBSCRIBE", "params": chunk, "id": first_id + i}).decode()
        for i, chunk in enumerate(chunked(streams, STREAMS_PER_SUBSCRIBE))
    ]


async def fetch_agg_trades(
    client: httpx.AsyncClient, rest_url: str, instrument: str, after_id: int, before_id: int | None
) -> list[Trade]:
    """Aggregate trades with after_id < id (< before_id), oldest first, paged by ``fromId``."""
    symbol = symbol_of(instrument)
    from_id = after_id + 1
    found: list[Trade] = []
    for _ in range(MAX_BACKFILL_PAGES):
        response = await client.get(
            f"{rest_url}/api/v3/aggTrades",
            params={"symbol": symbol, "fromId": from_id, "limit": REST_PAGE},
        )
        response.raise_for_status()
        rows = response.json()
        received = now_ms()
        found.extend(parse_agg_trade(row, instrument, received) for row in rows)
        if len(rows) < REST_PAGE:
            return found
        from_id = int(rows[-1]["a"]) + 1
        if before_id is not None and from_id >= before_id:
            return found
    log.warning("binance: backfill of %s stopped after %d pages", instrument, MAX_BACKFILL_PAGES)
    return found


class _BinanceSession:
    def __init__(self, source: BinanceSource, symbols: Sequence[str]) -> None:
        self.url = f"{source.ws_url}/stream"
        self._source = source
        self._streams = [f"{s.lower()}@{kind}" for s in symbols for kind in STREAM_KINDS]

    def subscribe_messages(self) -> list[str]:
        return subscribe_messages(self._streams)

    def keepalive_message(self) -> str | None:
        return None  # Binance pings us; the websockets library answers with pongs.

    async def on_open(self, sink: EventSink) -> None:
        await self._source.ids.catch_up(sink)

    async def on_message(self, raw: str | bytes, received_ms: int, sink: EventSink) -> None:
        status = self._source.status
        try:
            msg = orjson.loads(raw)
            events = parse_decoded(msg, received_ms, self._source.symbols)
        except (ValueError, KeyError, TypeError) as exc:
            status.extra["bad_messages"] = status.extra.get("bad_messages", 0) + 1
            log.warning("binance: unreadable message %.200r: %s", raw, exc)
            return
        if isinstance(msg, dict) and msg.get("error"):
            status.last_error = str(msg["error"])[:300]
            log.warning("binance: request %s failed: %s", msg.get("id"), msg["error"])
        for event in events:
            if isinstance(event, Trade):
                await self._source.ids.emit(event, sink)
            else:
                await sink.on_ticker(event)


class BinanceSource:
    """Live trades and tickers from Binance spot; implements `sources.base.Source`.

    Symbols are spread over as many connections as the 1024-streams-per-connection limit
    needs (two streams per symbol), each with its own reconnect loop.
    """

    kind: SourceKind = "live"

    def __init__(
        self,
        instruments: Sequence[str],
        *,
        ws_url: str,
        rest_url: str | None = None,
        options: LiveOptions | None = None,
        name: str = EXCHANGE,
        rest_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        # Every REST backfill call: connect, read, write and pool wait.
        self.rest_timeout_s = rest_timeout_s
        self.instruments = [str(parse_instrument(i)) for i in instruments]
        self.symbols = {symbol_of(i): i for i in self.instruments}
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        # bookTicker streams are busy; two minutes of silence means a dead connection.
        self.options = options or LiveOptions(
            silence_timeout_s=120.0, subscribe_pause_s=SUBSCRIBE_PAUSE_S
        )
        self.status = FeedStatus(name, "live", list(self.instruments))
        self.ids = TradeIds(self.status)

    def connection_groups(self) -> list[list[str]]:
        """Symbols per connection."""
        per_connection = MAX_STREAMS_PER_CONNECTION // len(STREAM_KINDS)
        return chunked(list(self.symbols), per_connection)

    async def run(self, sink: EventSink) -> None:
        """Stream forever (until cancelled), reconnecting and backfilling by itself."""
        async with httpx.AsyncClient(timeout=self.rest_timeout_s) as client:
            if self.rest_url is not None:
                self.ids.fetch = functools.partial(fetch_agg_trades, client, self.rest_url)
            async with asyncio.TaskGroup() as group:
                for symbols in self.connection_groups():
                    # Each connection backs off on its own.
                    backoff = Backoff(self.options.backoff.base, self.options.backoff.cap)
                    options = dataclasses.replace(self.options, backoff=backoff)
                    session = _BinanceSession(self, symbols)
                    group.create_task(run_session(session, sink, self.status, options))
