"""Coinbase Exchange (``ws-feed.exchange.coinbase.com``): parser and live source.

Channels: ``matches`` (``match``, and one ``last_match`` per product on subscribe),
``ticker`` and ``heartbeat``. Trade ids are consecutive per product, so a jump is a gap,
backfilled from ``GET /products/{id}/trades``. Coinbase's ``side`` is the *maker's* side;
`Trade.side` is the taker's, so it is flipped here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Side, Ticker, Trade
from cryptopulse.sources._live import LiveOptions, TradeIds, chunked, run_session
from cryptopulse.sources.base import EventSink, FeedStatus, SourceKind, now_ms

log = logging.getLogger(__name__)

EXCHANGE = "coinbase"
# Products per subscribe message. Coinbase documents no hard cap; small messages keep each
# request well inside its per-connection message limits.
PRODUCTS_PER_SUBSCRIBE = 100
CHANNELS = ("matches", "ticker", "heartbeat")
REST_PAGE = 1000
# Bound on one backfill: past this many pages the gap is logged and left.
MAX_BACKFILL_PAGES = 10

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TAKER_SIDE: dict[str, Side] = {"buy": "sell", "sell": "buy"}


# Whole seconds already converted (``2021-04-17T16:43:37`` → its epoch ms): consecutive
# trades mostly share their second, and `datetime.fromisoformat` is most of a trade's parse.
_SECONDS: dict[str, int] = {}
_MAX_SECONDS = 4096


def iso_ms(text: str) -> int:
    """``2021-04-17T16:43:37.089723Z`` → ms since the epoch (truncated)."""
    head, dot, frac = text.rstrip("Z").partition(".")
    millis = int((frac + "000")[:3]) if dot else 0
    seconds = _SECONDS.get(head)
    if seconds is None:
        if len(_SECONDS) >= _MAX_SECONDS:
            _SECONDS.clear()
        stamp = datetime.fromisoformat(head).replace(tzinfo=UTC)
        seconds = _SECONDS[head] = (stamp - _EPOCH) // _MS
    return seconds + millis


# Cached: a feed names a handful of products, and parsing one costs more than the rest of
# the trade's normalization.
@functools.lru_cache(maxsize=4096)
def instrument_of(product_id: str) -> str:
    return str(parse_instrument(f"{EXCHANGE}:{product_id}"))


def product_of(instrument: str) -> str:
    return parse_instrument(instrument).pair


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def parse_trade(msg: dict[str, Any], received_ms: int) -> Trade:
    """A ``match``/``last_match`` message or a REST trade row (for the given product).

    ``{"type":"match","trade_id":1568268,"side":"sell","size":"450","price":"0.791",
    "product_id":"SKL-USD","sequence":201390075,"time":"2021-04-17T16:43:37.121358Z"}``
    """
    return Trade(  # positional: keywords cost a quarter of the construction
        instrument_of(msg["product_id"]),
        str(msg["trade_id"]),
        float(msg["price"]),
        float(msg["size"]),
        _TAKER_SIDE[msg["side"]],
        iso_ms(msg["time"]),
        received_ms,
    )


def parse_ticker(msg: dict[str, Any], received_ms: int) -> Ticker:
    """A ``ticker`` message.

    ``{"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775",
    "volume_24h":"94381.28","best_bid":"14.7550","best_ask":"14.8060","side":"buy",
    "time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}``
    """
    time = msg.get("time")
    return Ticker(
        instrument=instrument_of(msg["product_id"]),
        bid=_float(msg.get("best_bid")),
        ask=_float(msg.get("best_ask")),
        last=_float(msg.get("price")),
        bid_size=_float(msg.get("best_bid_size")),
        ask_size=_float(msg.get("best_ask_size")),
        volume_24h=_float(msg.get("volume_24h")),
        time=iso_ms(time) if time else received_ms,
        received=received_ms,
    )


def parse_decoded(msg: Any, received_ms: int) -> list[Trade | Ticker]:
    """Events in one decoded feed message; anything else (l2update, heartbeat, ...) is []."""
    if not isinstance(msg, dict):
        return []
    kind = msg.get("type")
    if kind in ("match", "last_match"):
        return [parse_trade(msg, received_ms)]
    if kind == "ticker":
        return [parse_ticker(msg, received_ms)]
    return []


def parse_message(raw: bytes | str, received_ms: int) -> list[Trade | Ticker]:
    """Events in one raw feed frame (see `parse_trade` and `parse_ticker` for samples)."""
    return parse_decoded(orjson.loads(raw), received_ms)


def subscribe_messages(products: Sequence[str]) -> list[str]:
    """``{"type":"subscribe","product_ids":[...],"channels":[...]}`` per chunk of products."""
    return [
        orjson.dumps(
            {"type": "subscribe", "product_ids": chunk, "channels": list(CHANNELS)}
        ).decode()
        for chunk in chunked(products, PRODUCTS_PER_SUBSCRIBE)
    ]


async def fetch_trades(
    client: httpx.AsyncClient, rest_url: str, instrument: str, after_id: int, before_id: int | None
) -> list[Trade]:
    """Trades with after_id < id (< before_id) from ``GET /products/{id}/trades``.

    The endpoint returns newest first; ``after=N`` (and the ``CB-AFTER`` response header as
    the next cursor) pages to trades *older* than N.
    """
    product = product_of(instrument)
    params: dict[str, str | int] = {"limit": REST_PAGE}
    if before_id is not None:
        params["after"] = before_id
    found: list[Trade] = []
    for _ in range(MAX_BACKFILL_PAGES):
        response = await client.get(f"{rest_url}/products/{product}/trades", params=params)
        response.raise_for_status()
        rows = response.json()
        received = now_ms()
        ids = [int(row["trade_id"]) for row in rows]
        found.extend(
            parse_trade({**row, "product_id": product}, received)
            for row in rows
            if int(row["trade_id"]) > after_id
        )
        cursor = response.headers.get("cb-after")
        if not ids or min(ids) <= after_id + 1 or cursor is None:
            return found
        params["after"] = cursor
    log.warning("coinbase: backfill of %s stopped after %d pages", instrument, MAX_BACKFILL_PAGES)
    return found


class _CoinbaseSession:
    def __init__(self, source: CoinbaseSource, client: httpx.AsyncClient | None) -> None:
        self.url = source.ws_url
        self._source = source
        self._client = client
        if client is not None and source.rest_url is not None:
            source.ids.fetch = functools.partial(fetch_trades, client, source.rest_url)
        self.ids = source.ids

    def subscribe_messages(self) -> list[str]:
        return subscribe_messages(self._source.products)

    def keepalive_message(self) -> str | None:
        return None

    async def on_open(self, sink: EventSink) -> None:
        await self.ids.catch_up(sink)

    async def on_message(self, raw: str | bytes, received_ms: int, sink: EventSink) -> None:
        status = self._source.status
        try:
            msg = orjson.loads(raw)
            events = parse_decoded(msg, received_ms)
        except (ValueError, KeyError, TypeError) as exc:
            status.extra["bad_messages"] = status.extra.get("bad_messages", 0) + 1
            log.warning("coinbase: unreadable message %.200r: %s", raw, exc)
            return
        for event in events:
            if isinstance(event, Trade):
                await self.ids.emit(event, sink)
            else:
                await sink.on_ticker(event)
        if isinstance(msg, dict):
            await self._control(msg, sink)

    async def _control(self, msg: dict[str, Any], sink: EventSink) -> None:
        kind = msg.get("type")
        if kind == "heartbeat" and "last_trade_id" in msg:
            # A heartbeat names the product's latest trade: a gap shows without a new trade.
            instrument = instrument_of(msg["product_id"])
            last = self.ids.last.get(instrument)
            latest = int(msg["last_trade_id"])
            if last is not None and latest > last:
                self.ids.status.gaps += 1
                await self.ids.backfill(instrument, last, latest + 1, sink)
        elif kind == "error":
            self._source.status.last_error = str(msg.get("message"))[:300]
            log.warning("coinbase: error from feed: %s", msg)


class CoinbaseSource:
    """Live trades and tickers from Coinbase Exchange; implements `sources.base.Source`."""

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
        self.products = [product_of(i) for i in self.instruments]
        self.ws_url = ws_url
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        # The heartbeat channel ticks every second per product: 30 s of silence is dead.
        self.options = options or LiveOptions(silence_timeout_s=30.0)
        self.status = FeedStatus(name, "live", list(self.instruments))
        self.ids = TradeIds(self.status)

    async def run(self, sink: EventSink) -> None:
        """Stream forever (until cancelled), reconnecting and backfilling by itself."""
        if self.rest_url is None:
            await run_session(_CoinbaseSession(self, None), sink, self.status, self.options)
            return
        async with httpx.AsyncClient(timeout=self.rest_timeout_s) as client:
            await run_session(_CoinbaseSession(self, client), sink, self.status, self.options)
