"""A resumable stream over `/v1/stream`: reconnects, resumes, and refills gaps over REST.

What the consumer gets, channel by channel:

- every channel: frames in `seq` order, none repeated within one server's lifetime; after
  a reconnect the stream resumes from the last seq seen.
- `trades:` channels: every trade once (by `trade_id`), oldest first, even across a server
  restart: a `gap`, or any reconnect, is refilled from `GET /v1/trades` between the last
  trade seen and the first live one, and live trades already refilled are skipped.
- `candles:` channels: candle versions with a non-decreasing `open_time`; a gap or a
  reconnect is refilled from `GET /v1/candles` from the last open time seen, so no candle
  that closed meanwhile is missed (its latest version comes as a `refetch` message).
- other channels (tickers, signals, grades...): the snapshot after a gap; there is no
  history to refill.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from cryptopulse.client._routes import CandleQuery, Interval
from cryptopulse.client.errors import StreamClosed

if TYPE_CHECKING:
    from cryptopulse.client.aio import AsyncClient

__all__ = ["Stream", "StreamMessage"]

log = logging.getLogger(__name__)

Kind = Literal["snapshot", "data", "refetch"]
# Closes that retrying cannot fix: a refused credential (1008), over the plan (4029).
FATAL_CLOSES = frozenset({1008, 4029})
TRADE_IDS_KEPT = 20_000
REFETCH_PAGES = 20


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message for the consumer. `kind` is `refetch` for rows fetched over REST to
    fill a gap (their `seq` is None); `data` has the same shape either way."""

    channel: str
    kind: Kind
    seq: int | None
    time: int | None
    data: dict[str, Any]


@dataclass
class _Channel:
    name: str
    last_seq: int | None = None
    # Set by a gap or a reconnect: the next frame is preceded by a REST refill.
    refill: bool = False
    last_time: int | None = None  # trades: time of the last trade; candles: open_time
    ids: set[str] = field(default_factory=set)
    order: deque[str] = field(default_factory=deque)

    @property
    def family(self) -> str:
        return self.name.split(":", 1)[0]

    def seen(self, trade_id: str) -> bool:
        return trade_id in self.ids

    def remember(self, trade_id: str) -> None:
        self.ids.add(trade_id)
        self.order.append(trade_id)
        if len(self.order) > TRADE_IDS_KEPT:
            self.ids.discard(self.order.popleft())


class Stream:
    """Async iterator of `StreamMessage`s; use as `async with client.stream([...]) as s:`
    or plainly `async for msg in client.stream([...])`.

    `backoff_s`..`max_backoff_s` bound the jittered wait between reconnects;
    `idle_timeout_s` is how long silence (no frame, no heartbeat) is tolerated before a
    ping, and then a reconnect. `reconnects`, `gaps` and `refetched` count what happened.
    """

    def __init__(
        self,
        client: AsyncClient,
        channels: list[str],
        resume: dict[str, int],
        *,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        idle_timeout_s: float = 40.0,
        refill_wait_s: float = 3.0,
    ) -> None:
        self.client = client
        self.channels = {name: _Channel(name, resume.get(name)) for name in channels}
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.idle_timeout_s = idle_timeout_s
        self.refill_wait_s = refill_wait_s
        self.reconnects = 0
        self.gaps = 0
        self.refetched = 0
        self.reauths = 0
        self._ws: ClientConnection | None = None
        self._ids = iter(range(1, 2**31))
        self._iterator: AsyncIterator[StreamMessage] | None = None

    @property
    def ws_url(self) -> str:
        base = self.client.base_url
        scheme = "wss" if base.startswith("https") else "ws"
        return f"{scheme}://{base.split('://', 1)[1]}/v1/stream"

    def resume_points(self) -> dict[str, int]:
        """The last seq seen per channel (what a later stream can resume from)."""
        return {n: c.last_seq for n, c in self.channels.items() if c.last_seq is not None}

    def __aiter__(self) -> AsyncIterator[StreamMessage]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    async def __anext__(self) -> StreamMessage:
        return await self.__aiter__().__anext__()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    async def _run(self) -> AsyncIterator[StreamMessage]:
        failures = 0
        renewed = False
        while True:
            try:
                async for message in self._session():
                    failures, renewed = 0, False
                    yield message
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                reason = closed.rcvd.reason if closed.rcvd else ""
                if code in FATAL_CLOSES:
                    if code == 1008 and self.client.credentials.use_jwt and not renewed:
                        renewed = True  # the JWT may have lapsed while away: renew once
                        await self.client.credential(renew=True)
                    else:
                        raise StreamClosed(code, reason) from None
                log.info("stream closed (%s %s); reconnecting", code, reason)
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    status = exc.response.status_code
                    raise StreamClosed(1008, f"handshake refused: {status}") from None
                log.info("stream handshake failed: %s", exc.response.status_code)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                log.info("stream connection failed: %s", type(exc).__name__)
            for channel in self.channels.values():
                channel.refill = channel.family in ("trades", "candles")
            self.reconnects += 1
            ceiling = min(self.max_backoff_s, self.backoff_s * 2**failures)
            failures += 1
            await asyncio.sleep(ceiling * (0.5 + random.random() / 2))  # noqa: S311

    async def _session(self) -> AsyncIterator[StreamMessage]:
        headers = {}
        credential = await self.client.credential()
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        async with connect(
            self.ws_url, additional_headers=headers, open_timeout=5, close_timeout=1
        ) as ws:
            self._ws = ws
            resume = self.resume_points()
            await self._send({"op": "subscribe", "id": 0, "channels": list(self.channels),
                              "resume": resume})  # fmt: skip
            while True:
                frame = await self._receive(ws)
                async for message in self._handle(frame):
                    yield message

    async def _send(self, body: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(orjson.dumps(body).decode())

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        """The next frame; silence past `idle_timeout_s` gets a ping, then a reconnect."""
        for attempt in range(2):
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    frame: dict[str, Any] = orjson.loads(await ws.recv())
                    return frame
            except TimeoutError:
                if attempt == 0:
                    await self._send({"op": "ping", "id": f"idle-{next(self._ids)}"})
        await ws.close(1001, "silent server")
        raise TimeoutError("no frame or heartbeat from the server")

    async def _handle(self, frame: dict[str, Any]) -> AsyncIterator[StreamMessage]:
        kind = frame.get("type")
        if kind in ("data", "snapshot"):
            channel = self.channels.get(str(frame.get("channel")))
            if channel is not None:
                async for message in self._on_message(channel, frame):
                    yield message
        elif kind == "gap":
            async for message in self._on_gap(frame):
                yield message
        elif kind == "error":
            await self._on_error(frame)
        # subscribed, heartbeat, pong, authenticated: liveness only.

    async def _on_gap(self, frame: dict[str, Any]) -> AsyncIterator[StreamMessage]:
        channel = self.channels.get(str(frame.get("channel")))
        if channel is None:
            return
        self.gaps += 1
        # The seqs may have restarted (a server restart on the in-memory bus): forget ours.
        channel.last_seq = None
        channel.refill = True
        if int(frame.get("to_seq", 0)) < int(frame.get("from_seq", 1)):
            # Empty history: no snapshot follows, so refill now up to whatever is stored.
            channel.refill = False
            async for message in self._refill(channel, None):
                yield message

    async def _on_error(self, frame: dict[str, Any]) -> None:
        code = frame.get("code")
        if code == "token_expired":
            self.reauths += 1
            token = await self.client.credential(renew=True)
            await self._send({"op": "auth", "token": token})
        elif frame.get("id") == 0 and code in ("unknown_channel", "forbidden", "invalid_request",
                                               "too_many_subscriptions"):  # fmt: skip
            raise StreamClosed(None, f"subscribe refused: {code}: {frame.get('message')}")
        else:
            log.warning("stream error frame: %s %s", code, frame.get("message"))

    async def _on_message(
        self, channel: _Channel, frame: dict[str, Any]
    ) -> AsyncIterator[StreamMessage]:
        seq = int(frame["seq"])
        if channel.refill:
            channel.refill = False
            async for message in self._refill(channel, frame):
                yield message
        elif channel.last_seq is not None and seq <= channel.last_seq:
            return  # already delivered (a resume that overlapped)
        channel.last_seq = seq
        message = StreamMessage(
            channel.name, frame["type"], seq, frame.get("time"), dict(frame.get("data") or {})
        )
        if self._accept(channel, message):
            yield message

    def _accept(self, channel: _Channel, message: StreamMessage) -> bool:
        """Trades once by id; candles never older than one already delivered."""
        data = message.data
        if channel.family == "trades":
            trade_id = str(data.get("trade_id"))
            if channel.seen(trade_id):
                return False
            channel.remember(trade_id)
            channel.last_time = int(data.get("time", 0))
        elif channel.family == "candles":
            open_time = int(data.get("open_time", 0))
            if channel.last_time is not None and open_time < channel.last_time:
                return False
            channel.last_time = open_time
        return True

    async def _refill(
        self, channel: _Channel, frame: dict[str, Any] | None
    ) -> AsyncIterator[StreamMessage]:
        if channel.last_time is None or channel.family not in ("trades", "candles"):
            return  # nothing seen yet, or no history to refetch: the snapshot will do
        if channel.family == "trades":
            rows = await self._missed_trades(channel, frame)
        else:
            rows = await self._missed_candles(channel)
        for row in rows:
            message = StreamMessage(channel.name, "refetch", None, None, row)
            if self._accept(channel, message):
                self.refetched += 1
                yield message

    async def _missed_trades(
        self, channel: _Channel, frame: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Trades after the last one seen, oldest first. With a live `frame` to reach, wait
        (bounded) until the store has it: trades are written in batches."""
        instrument = channel.name.split(":", 1)[1]
        target = str((frame or {}).get("data", {}).get("trade_id", "")) or None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.refill_wait_s
        while True:
            rows = await self._trades_since(instrument, channel)
            # Reached: the live trade is in the store (or was delivered before).
            if target is None or channel.seen(target) or any(r["trade_id"] == target for r in rows):
                break
            if loop.time() > deadline:
                log.warning("refill of %s did not reach the live trade %s", channel.name, target)
                break
            await asyncio.sleep(0.1)
        return rows

    async def _trades_since(self, instrument: str, channel: _Channel) -> list[dict[str, Any]]:
        newest_first: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(REFETCH_PAGES):
            page = await self.client.trades(instrument, limit=1000, **_cursor(cursor))
            for trade in page.data:
                if trade.time < (channel.last_time or 0):
                    return _oldest_first(newest_first, instrument)  # back where we were
                if not channel.seen(trade.trade_id):
                    newest_first.append(trade.model_dump())
            cursor = page.next_cursor
            if cursor is None:
                break
        return _oldest_first(newest_first, instrument)

    async def _missed_candles(self, channel: _Channel) -> list[dict[str, Any]]:
        _, rest = channel.name.split(":", 1)
        instrument, interval = rest.rsplit(":", 1)
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(REFETCH_PAGES):
            query: CandleQuery = {"interval": cast(Interval, interval), "limit": 1000}
            query["start"] = channel.last_time or 0
            if cursor:
                query["cursor"] = cursor
            page = await self.client.candles(instrument, **query)
            rows += [{"instrument": instrument, "interval": interval, **c.model_dump()}
                     for c in page.data]  # fmt: skip
            cursor = page.next_cursor
            if cursor is None:
                break
        return rows


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}


def _oldest_first(newest_first: list[dict[str, Any]], instrument: str) -> list[dict[str, Any]]:
    return [{"instrument": instrument, **row} for row in reversed(newest_first)]
