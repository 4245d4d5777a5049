"""Shared machinery of the live exchange sources.

`run_session` owns one WebSocket: connect, send the subscribe messages, read until the
connection dies or goes silent, then reconnect after a jittered exponential backoff, forever.
What is exchange specific (URL, subscribe messages, keepalive, message handling) lives in a
small `Session` object per connection. `TradeIds` does per-instrument trade-id gap detection
and REST backfill for the exchanges whose trade ids are consecutive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from cryptopulse.domain.models import Trade
from cryptopulse.sources.base import Backoff, EventSink, FeedStatus, now_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a dropped, refused or silent connection raises.
NETWORK_ERRORS = (OSError, TimeoutError, WebSocketException)

# Errors a backfill request may end with; the live stream goes on without the backfill.
BACKFILL_ERRORS = (httpx.HTTPError, ValueError, KeyError, TypeError)

# Fetch trades of one instrument with after_id < id (< before_id when given), any order.
FetchTrades = Callable[[str, int, int | None], Awaitable[list[Trade]]]


class SilenceTimeout(TimeoutError):
    """Nothing arrived within the silence timeout: the connection is treated as dead."""


class Session(Protocol):
    """The exchange-specific half of one live connection; `run_session` drives it."""

    url: str

    def subscribe_messages(self) -> list[str]:
        """Text frames to send right after connecting."""
        ...

    def keepalive_message(self) -> str | None:
        """An application-level ping to send every keepalive interval, or None."""
        ...

    async def on_open(self, sink: EventSink) -> None:
        """Called once subscribed on every (re)connect: catch up what was missed."""
        ...

    async def on_message(self, raw: str | bytes, received_ms: int, sink: EventSink) -> None:
        """Handle one frame; parse errors are the session's to log, not to raise."""
        ...


@dataclass(slots=True)
class LiveOptions:
    """Timeouts and pacing of a live connection (tests shrink them)."""

    silence_timeout_s: float = 30.0
    keepalive_interval_s: float | None = None
    subscribe_pause_s: float = 0.0
    open_timeout_s: float = 10.0
    # Protocol-level pings from our side; the library answers the server's pings itself.
    ping_interval_s: float | None = 20.0
    max_size: int = 2**23
    backoff: Backoff = field(default_factory=Backoff)


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in lists of at most `size`, order kept."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def note_error(status: FeedStatus, exc: BaseException) -> None:
    status.last_error = f"{type(exc).__name__}: {exc}"[:300]


async def run_session(
    session: Session, sink: EventSink, status: FeedStatus, options: LiveOptions
) -> None:
    """Keep `session` connected forever; returns only by cancellation."""
    backoff = options.backoff
    attempt = 0
    while True:
        if attempt:
            status.reconnects += 1
        attempt += 1
        try:
            await _connect_once(session, sink, status, options)
        except asyncio.CancelledError:
            raise
        except NETWORK_ERRORS as exc:
            note_error(status, exc)
            log.warning("%s: connection to %s lost: %s", status.name, session.url, exc)
        except Exception as exc:  # a bug: keep the feed alive, but with the traceback
            note_error(status, exc)
            log.exception("%s: connection to %s failed", status.name, session.url)
        else:
            log.info("%s: connection to %s closed by the server", status.name, session.url)
        delay = backoff.next_delay()
        await asyncio.sleep(delay)


def _set_connected(status: FeedStatus, delta: int) -> None:
    # One status for all connections of a source: connected while any of them is open.
    open_now = status.extra.get("open_connections", 0)
    status.extra["open_connections"] = open_now + delta
    status.connected = open_now + delta > 0


async def _connect_once(
    session: Session, sink: EventSink, status: FeedStatus, options: LiveOptions
) -> None:
    async with connect(
        session.url,
        open_timeout=options.open_timeout_s,
        ping_interval=options.ping_interval_s,
        max_size=options.max_size,
        compression=None,
    ) as ws:
        _set_connected(status, +1)
        try:
            messages = session.subscribe_messages()
            for i, message in enumerate(messages):
                if i and options.subscribe_pause_s:
                    await asyncio.sleep(options.subscribe_pause_s)
                await ws.send(message)
            await session.on_open(sink)
            await _read(ws, session, sink, status, options)
        finally:
            _set_connected(status, -1)


async def _read(
    ws: ClientConnection,
    session: Session,
    sink: EventSink,
    status: FeedStatus,
    options: LiveOptions,
) -> None:
    """Read frames until the connection closes; raise SilenceTimeout on silence."""
    keepalive = options.keepalive_interval_s
    last_rx = time.monotonic()
    next_ping = last_rx + keepalive if keepalive else math.inf
    first = True
    while True:
        now = time.monotonic()
        wait = min(last_rx + options.silence_timeout_s, next_ping) - now
        try:
            # Cancelling recv() is safe in websockets' asyncio client: no frame is lost.
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(max(wait, 0.0)):
                raw = await ws.recv()
        except TimeoutError:
            now = time.monotonic()
            if now - last_rx >= options.silence_timeout_s:
                raise SilenceTimeout(f"no message for {options.silence_timeout_s:g} s") from None
            ping = session.keepalive_message()
            if ping is not None:
                await ws.send(ping)
            next_ping = now + (keepalive or math.inf)
            continue
        last_rx = time.monotonic()
        received = now_ms()
        if first:
            # Only a connection that delivers resets the backoff: a server that accepts
            # and drops at once must not be hammered.
            options.backoff.reset()
            first = False
        status.messages += 1
        status.last_message = received
        await session.on_message(raw, received, sink)
        # A slow handler (a REST backfill) is not silence from the exchange.
        last_rx = time.monotonic()


@dataclass(slots=True)
class TradeIds:
    """Per-instrument last trade id, for venues whose trade ids are consecutive.

    `emit` passes a trade to the sink unless it is a repeat (id at or below the last one
    seen); a jump in ids counts a gap and backfills the missing ids by REST first.
    `catch_up` (on reconnect) backfills everything after the last id seen.
    """

    status: FeedStatus
    fetch: FetchTrades | None = None
    last: dict[str, int] = field(default_factory=dict)

    async def emit(self, trade: Trade, sink: EventSink) -> None:
        trade_id = int(trade.trade_id)
        last = self.last.get(trade.instrument)
        if last is not None and trade_id <= last:
            self.status.extra["duplicates"] = self.status.extra.get("duplicates", 0) + 1
            return
        if last is not None and trade_id > last + 1:
            self.status.gaps += 1
            log.warning(
                "%s: %s trade ids %d..%d missing",
                self.status.name,
                trade.instrument,
                last + 1,
                trade_id - 1,
            )
            await self.backfill(trade.instrument, last, trade_id, sink)
        self.last[trade.instrument] = trade_id
        await sink.on_trade(trade)

    async def catch_up(self, sink: EventSink) -> None:
        for instrument, last in list(self.last.items()):
            await self.backfill(instrument, last, None, sink)

    async def backfill(
        self, instrument: str, after_id: int, before_id: int | None, sink: EventSink
    ) -> int:
        """Send the trades after_id < id < before_id from REST; returns how many were sent."""
        if self.fetch is None:
            return 0
        try:
            trades = await self.fetch(instrument, after_id, before_id)
        except BACKFILL_ERRORS as exc:
            note_error(self.status, exc)
            log.warning("%s: backfill of %s failed: %s", self.status.name, instrument, exc)
            return 0
        sent = 0
        last = self.last.get(instrument, after_id)
        for trade in _in_id_order(trades):
            trade_id = int(trade.trade_id)
            if trade_id <= last or (before_id is not None and trade_id >= before_id):
                continue
            last = trade_id
            self.last[instrument] = trade_id
            sent += 1
            await sink.on_trade(trade)
        self.status.backfilled += sent
        if sent:
            log.info("%s: backfilled %d trades of %s", self.status.name, sent, instrument)
        return sent


def _in_id_order(trades: Iterable[Trade]) -> list[Trade]:
    return sorted(trades, key=lambda t: int(t.trade_id))
