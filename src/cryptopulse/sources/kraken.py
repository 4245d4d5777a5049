"""Kraken WebSocket v1 (``ws.kraken.com``): parser and live source.

Subscriptions ``trade`` and ``ticker`` per pair (``XBT/USD``). Data frames are arrays
``[channelID, payload, channelName, pair]``; events (``systemStatus``,
``subscriptionStatus``, ``heartbeat``, ``pong``) are objects. Kraken v1 trades carry no
trade id, so `synthetic_trade_id` makes one; without ids there is no gap detection and no
backfill. Kraken sends a heartbeat every second on an idle subscribed connection, and we
send ``{"event":"ping"}`` now and then as well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

from cryptopulse.domain.instruments import ASSET_ALIASES, normalize_asset, parse_instrument
from cryptopulse.domain.models import Side, Ticker, Trade
from cryptopulse.sources._live import LiveOptions, chunked, run_session
from cryptopulse.sources.base import EventSink, FeedStatus, SourceKind

log = logging.getLogger(__name__)

EXCHANGE = "kraken"
# Pairs per subscribe message: Kraken v1 documents no cap; keep requests small.
PAIRS_PER_SUBSCRIBE = 50
SUBSCRIPTIONS = ("trade", "ticker")
_SIDES: dict[str, Side] = {"b": "buy", "s": "sell"}
# Our asset name → Kraken's (the reverse of ASSET_ALIASES: BTC → XBT).
_KRAKEN_ASSET = {ours: theirs for theirs, ours in ASSET_ALIASES.items()}


def instrument_of(pair: str) -> str:
    """``XBT/USD`` → ``kraken:BTC-USD``."""
    base, _, quote = pair.partition("/")
    return f"{EXCHANGE}:{normalize_asset(base)}-{normalize_asset(quote)}"


def pair_of(instrument: str) -> str:
    """``kraken:BTC-USD`` → ``XBT/USD``."""
    parsed = parse_instrument(instrument)
    base = _KRAKEN_ASSET.get(parsed.base, parsed.base)
    quote = _KRAKEN_ASSET.get(parsed.quote, parsed.quote)
    return f"{base}/{quote}"


def seconds_to_ms(text: str) -> int:
    """``"1618678142.557535"`` → 1618678142557, exactly (no float rounding)."""
    whole, _, frac = text.partition(".")
    return int(whole) * 1000 + int((frac + "000")[:3])


def synthetic_trade_id(time_text: str, side: str, price: str, volume: str, repeat: int) -> str:
    """A deterministic id for a Kraken v1 trade, built from the fields exactly as sent:
    ``<time>-<side>-<price>-<volume>``, plus ``-<n>`` for the n-th identical entry of one
    message. The same trade read twice (replay, duplicate frame) gets the same id."""
    base = f"{time_text}-{side}-{price}-{volume}"
    return base if repeat == 0 else f"{base}-{repeat}"


def parse_trades(entries: list[list[str]], pair: str, received_ms: int) -> list[Trade]:
    """The payload of a ``trade`` frame: one Trade per entry
    ``[price, volume, time, side, orderType, misc]``.

    ``[993,[["354.04000000","0.28245396","1618678150.826417","s","m",""],
    ["353.81000000","1.71754604","1618678150.827816","s","m",""]],"trade","XMR/USD"]``
    """
    instrument = instrument_of(pair)
    seen: dict[str, int] = {}
    trades: list[Trade] = []
    for price, volume, time_text, side, *_ in entries:
        key = f"{time_text}-{side}-{price}-{volume}"
        repeat = seen.get(key, 0)
        seen[key] = repeat + 1
        trades.append(
            Trade(
                instrument,
                synthetic_trade_id(time_text, side, price, volume, repeat),
                float(price),
                float(volume),
                _SIDES[side],
                seconds_to_ms(time_text),
                received_ms,
            )
        )
    return trades


def parse_ticker(payload: dict[str, Any], pair: str, received_ms: int) -> Ticker:
    """The payload of a ``ticker`` frame; Kraken sends no time, so receipt time stands in.

    ``[340,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"1.000"],
    "c":["5525.10000","0.00398963"],"v":["2634.11501494","3591.17907851"], ...},
    "ticker","XBT/USD"]``
    """
    return Ticker(
        instrument_of(pair),
        float(payload["b"][0]),
        float(payload["a"][0]),
        float(payload["c"][0]),
        float(payload["b"][2]),
        float(payload["a"][2]),
        float(payload["v"][1]),
        received_ms,
        received_ms,
    )


class KrakenParser:
    """Per-connection parser: remembers channelID → pair from ``subscriptionStatus``
    (frames also name the pair at the end; the map covers frames that do not)."""

    def __init__(self) -> None:
        self.channels: dict[int, str] = {}
        self.last_event: dict[str, Any] | None = None

    def parse(self, raw: bytes | str, received_ms: int) -> list[Trade | Ticker]:
        """Events in one frame; event objects update state (see `last_event`) and give []."""
        msg = orjson.loads(raw)
        if isinstance(msg, dict):
            self._event(msg)
            return []
        if not isinstance(msg, list) or len(msg) < 3:
            return []
        self.last_event = None
        # [channelID, payload, channelName, pair]; older frames end at channelName.
        pair: str | None
        if isinstance(msg[-1], str) and "/" in msg[-1]:
            channel_name, pair = msg[-2], msg[-1]
        else:
            channel_name, pair = msg[-1], self.channels.get(msg[0])
        if pair is None:
            return []
        if channel_name == "trade":
            return list(parse_trades(msg[1], pair, received_ms))
        if channel_name == "ticker":
            return [parse_ticker(msg[1], pair, received_ms)]
        return []

    def _event(self, msg: dict[str, Any]) -> None:
        self.last_event = msg
        if msg.get("event") == "subscriptionStatus" and msg.get("status") == "subscribed":
            channel_id = msg.get("channelID")
            if isinstance(channel_id, int) and isinstance(msg.get("pair"), str):
                self.channels[channel_id] = msg["pair"]


def parse_message(raw: bytes | str, received_ms: int) -> list[Trade | Ticker]:
    """Events in one frame, without connection state (frames carry their pair)."""
    return KrakenParser().parse(raw, received_ms)


def subscribe_messages(pairs: Sequence[str]) -> list[str]:
    """``{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"trade"}}``, chunked."""
    return [
        orjson.dumps({"event": "subscribe", "pair": chunk, "subscription": {"name": name}}).decode()
        for name in SUBSCRIPTIONS
        for chunk in chunked(pairs, PAIRS_PER_SUBSCRIBE)
    ]


class _KrakenSession:
    def __init__(self, source: KrakenSource) -> None:
        self.url = source.ws_url
        self._source = source
        self._parser = KrakenParser()
        self._reqid = 0

    def subscribe_messages(self) -> list[str]:
        # Called on every connect: channel ids belong to one connection.
        self._parser = KrakenParser()
        return subscribe_messages(self._source.pairs)

    def keepalive_message(self) -> str | None:
        self._reqid += 1
        return orjson.dumps({"event": "ping", "reqid": self._reqid}).decode()

    async def on_open(self, sink: EventSink) -> None:
        return None  # Kraken v1 has no trade ids to backfill from.

    async def on_message(self, raw: str | bytes, received_ms: int, sink: EventSink) -> None:
        status = self._source.status
        try:
            events = self._parser.parse(raw, received_ms)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            status.extra["bad_messages"] = status.extra.get("bad_messages", 0) + 1
            log.warning("kraken: unreadable message %.200r: %s", raw, exc)
            return
        for event in events:
            if isinstance(event, Trade):
                await sink.on_trade(event)
            else:
                await sink.on_ticker(event)
        if self._parser.last_event is not None:
            self._check_event(self._parser.last_event)

    def _check_event(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        problem = None
        if event == "systemStatus" and msg.get("status") != "online":
            problem = f"system status {msg.get('status')}"
        elif event == "subscriptionStatus" and msg.get("status") == "error":
            problem = f"subscription {msg.get('pair')}: {msg.get('errorMessage')}"
        if problem is not None:
            self._source.status.last_error = problem[:300]
            log.warning("kraken: %s", problem)


class KrakenSource:
    """Live trades and tickers from Kraken v1; implements `sources.base.Source`."""

    kind: SourceKind = "live"

    def __init__(
        self,
        instruments: Sequence[str],
        *,
        ws_url: str,
        rest_url: str | None = None,
        options: LiveOptions | None = None,
        name: str = EXCHANGE,
    ) -> None:
        self.name = name
        self.instruments = [str(parse_instrument(i)) for i in instruments]
        self.pairs = [pair_of(i) for i in self.instruments]
        self.ws_url = ws_url
        self.rest_url = rest_url  # unused: Kraken v1 trades have no ids to backfill by
        # Heartbeats come every second when idle: 10 s of silence is a dead connection.
        self.options = options or LiveOptions(silence_timeout_s=10.0, keepalive_interval_s=30.0)
        self.status = FeedStatus(name, "live", list(self.instruments))

    async def run(self, sink: EventSink) -> None:
        """Stream forever (until cancelled), reconnecting by itself."""
        await run_session(_KrakenSession(self), sink, self.status, self.options)
