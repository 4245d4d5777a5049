"""Fake exchanges: real WebSocket and REST servers on 127.0.0.1 that replay captured frames.

A fake streams `frames` (raw text frames, usually cut from ``../shared/data/captures``) to
each subscribed connection, from one cursor shared by all connections, as the exchange's
clock would. Frames at given positions can be dropped, duplicated, swapped with the next
one, or replaced by a disconnect (optionally skipping frames "sent while the client was
away"). The REST app serves the trades of every frame the cursor has passed, whether or not
the client got them, which is what backfill needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CAPTURES = DATA / "captures"


def server_frames(name: str) -> list[str]:
    """The exchange-to-client messages of a capture file, as sent (plain text)."""
    frames = []
    for line in (CAPTURES / name).read_text(encoding="utf-8").splitlines():
        if line[:1].isdigit():
            frames.append(line.partition(": ")[2])
    return frames


class FakeExchange:
    """Base fake; subclasses speak one exchange's protocol."""

    def __init__(self, frames: Sequence[str], *, pace_s: float = 0.0, idle_s: float = 0.05):
        self.frames = list(frames)
        self.pace_s = pace_s
        self.idle_s = idle_s
        self.cursor = 0
        self.actions: dict[int, tuple[str, int]] = {}
        self.client_messages: list[Any] = []
        self.connections = 0
        self.rest_requests: list[str] = []
        self._clients: set[ServerConnection] = set()
        self._ws: Server | None = None
        self._rest: uvicorn.Server | None = None
        self._rest_task: asyncio.Task[None] | None = None
        self._rest_port = 0

    # Commands (positions are indexes into `frames`).
    def drop(self, index: int) -> None:
        self.actions[index] = ("drop", 0)

    def duplicate(self, index: int) -> None:
        self.actions[index] = ("duplicate", 0)

    def swap(self, index: int) -> None:
        """Send frame index + 1 before frame index."""
        self.actions[index] = ("swap", 0)

    def disconnect(self, index: int, missed: int = 0) -> None:
        """Close the connection instead of sending frame `index`; the next `missed` frames
        pass while the client is away (it never gets them over the socket)."""
        self.actions[index] = ("disconnect", missed)

    async def kick(self) -> None:
        """Close every client connection now."""
        for ws in list(self._clients):
            await ws.close()

    # Protocol hooks.
    def greeting(self) -> list[str]:
        return []

    def on_client_message(self, msg: Any, subs: set[str]) -> list[str]:
        """Replies to a client message; adds what it subscribes to `subs`."""
        raise NotImplementedError

    def topic_of(self, frame: Any) -> str | None:
        """What a client must be subscribed to for this frame; None: sent to everyone."""
        raise NotImplementedError

    def idle_message(self) -> str | None:
        return None

    def routes(self) -> list[Route]:
        return []

    # Servers.
    @property
    def ws_url(self) -> str:
        assert self._ws is not None
        port = next(iter(self._ws.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._rest_port}"

    def published(self) -> list[Any]:
        """Decoded frames the exchange has put out so far (delivered or not)."""
        return [json.loads(f) for f in self.frames[: self.cursor]]

    async def __aenter__(self) -> Self:
        self._ws = await serve(self._handle, "127.0.0.1", 0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._rest_port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=self.routes()), log_level="warning", lifespan="off"
        )
        self._rest = uvicorn.Server(config)
        self._rest_task = asyncio.create_task(self._rest.serve(sockets=[sock]))
        for _ in range(200):
            if self._rest.started:
                break
            await asyncio.sleep(0.01)
        assert self._rest.started, "fake REST server did not start"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._ws is not None and self._rest is not None and self._rest_task
        self._ws.close()
        await self._ws.wait_closed()
        self._rest.should_exit = True
        await asyncio.wait_for(self._rest_task, 5)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._clients.add(ws)
        subs: set[str] = set()
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, subs, subscribed))
        try:
            for message in self.greeting():
                await ws.send(message)
            await asyncio.wait_for(subscribed.wait(), 5)
            await self._stream(ws, subs)
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._clients.discard(ws)

    async def _read(self, ws: ServerConnection, subs: set[str], subscribed: asyncio.Event) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                self.client_messages.append(msg)
                for reply in self.on_client_message(msg, subs):
                    await ws.send(reply)
                if subs:
                    subscribed.set()
        except ConnectionClosed:
            pass
        finally:
            subscribed.set()  # closed before subscribing: let the handler end now

    async def _stream(self, ws: ServerConnection, subs: set[str]) -> None:
        while True:
            if self.cursor >= len(self.frames):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), self.idle_s)
                    return
                if (idle := self.idle_message()) is not None:
                    await ws.send(idle)
                continue
            index = self.cursor
            action, missed = self.actions.pop(index, ("send", 0))
            if action == "disconnect":
                self.cursor += missed
                await ws.close()
                return
            self.cursor += 1
            batch = [self.frames[index]]
            if action == "swap" and index + 1 < len(self.frames):
                self.cursor += 1
                batch.insert(0, self.frames[index + 1])
            elif action == "duplicate":
                batch.append(batch[0])
            elif action == "drop":
                batch = []
            for frame in batch:
                topic = self.topic_of(json.loads(frame))
                if topic is None or topic in subs:
                    await ws.send(frame)
            await asyncio.sleep(self.pace_s)


class FakeCoinbase(FakeExchange):
    """Coinbase Exchange feed + ``GET /products/{id}/trades`` (newest first, ``after``
    cursor, ``CB-AFTER`` header)."""

    def on_client_message(self, msg: Any, subs: set[str]) -> list[str]:
        if msg.get("type") != "subscribe":
            return []
        subs.update(msg["product_ids"])
        channels = [{"name": c, "product_ids": sorted(subs)} for c in msg["channels"]]
        return [json.dumps({"type": "subscriptions", "channels": channels})]

    def topic_of(self, frame: Any) -> str | None:
        return frame.get("product_id") if isinstance(frame, dict) else None

    def trades_of(self, product: str) -> list[dict[str, Any]]:
        return [
            {k: m[k] for k in ("time", "trade_id", "price", "size", "side")}
            for m in self.published()
            if m.get("type") in ("match", "last_match") and m.get("product_id") == product
        ]

    def routes(self) -> list[Route]:
        async def trades(request: Request) -> JSONResponse:
            self.rest_requests.append(str(request.url))
            rows = sorted(
                {r["trade_id"]: r for r in self.trades_of(request.path_params["product"])}.values(),
                key=lambda r: -r["trade_id"],
            )
            limit = int(request.query_params.get("limit", "100"))
            after = request.query_params.get("after")
            if after is not None:
                rows = [r for r in rows if r["trade_id"] < int(after)]
            page = rows[:limit]
            headers = {"CB-AFTER": str(page[-1]["trade_id"])} if page else {}
            return JSONResponse(page, headers=headers)

        return [Route("/products/{product}/trades", trades)]


class FakeBinance(FakeExchange):
    """Binance combined streams (``/stream`` + ``SUBSCRIBE``) + ``GET /api/v3/aggTrades``."""

    def on_client_message(self, msg: Any, subs: set[str]) -> list[str]:
        if msg.get("method") != "SUBSCRIBE":
            return []
        subs.update(msg["params"])
        return [json.dumps({"result": None, "id": msg["id"]})]

    def topic_of(self, frame: Any) -> str | None:
        return frame.get("stream") if isinstance(frame, dict) else None

    def agg_trades_of(self, symbol: str) -> list[dict[str, Any]]:
        rows = {
            f["data"]["a"]: {k: f["data"][k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")}
            for f in self.published()
            if f.get("data", {}).get("e") == "aggTrade" and f["data"]["s"] == symbol
        }
        return [rows[a] for a in sorted(rows)]

    def routes(self) -> list[Route]:
        async def agg_trades(request: Request) -> JSONResponse:
            self.rest_requests.append(str(request.url))
            query = request.query_params
            rows = self.agg_trades_of(query["symbol"])
            from_id = int(query.get("fromId", "0"))
            limit = min(int(query.get("limit", "500")), 1000)
            return JSONResponse([r for r in rows if r["a"] >= from_id][:limit])

        return [Route("/api/v3/aggTrades", agg_trades)]


class FakeKraken(FakeExchange):
    """Kraken WebSocket v1: systemStatus on connect, subscriptionStatus per pair with a
    channelID, pong to ping, heartbeat when idle."""

    def __init__(self, frames: Sequence[str], **kwargs: Any) -> None:
        super().__init__(frames, **kwargs)
        self.channel_ids: dict[str, int] = {}
        for frame in map(json.loads, frames):
            if isinstance(frame, list):
                self.channel_ids.setdefault(frame[-1], frame[0])

    def greeting(self) -> list[str]:
        status = {"connectionID": 1, "event": "systemStatus", "status": "online"}
        return [json.dumps(status | {"version": "1.8.3"})]

    def on_client_message(self, msg: Any, subs: set[str]) -> list[str]:
        if msg.get("event") == "ping":
            return [json.dumps({"event": "pong", "reqid": msg.get("reqid")})]
        if msg.get("event") != "subscribe":
            return []
        name = msg["subscription"]["name"]
        replies = []
        for pair in msg["pair"]:
            subs.add(f"{name}:{pair}")
            channel_id = self.channel_ids.setdefault(pair, 9000 + len(self.channel_ids))
            status = {"channelID": channel_id, "channelName": name, "event": "subscriptionStatus"}
            status |= {"pair": pair, "status": "subscribed", "subscription": {"name": name}}
            replies.append(json.dumps(status))
        return replies

    def topic_of(self, frame: Any) -> str | None:
        return f"{frame[-2]}:{frame[-1]}" if isinstance(frame, list) else None

    def idle_message(self) -> str | None:
        return json.dumps({"event": "heartbeat"})
