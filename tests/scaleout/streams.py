"""A resuming WebSocket client for cluster tests: reconnects and resumes from the last
seq per channel, like the README's client, and keeps every frame it got."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus


@dataclass
class StreamClient:
    url: str
    channels: list[str]
    frames: list[dict[str, Any]] = field(default_factory=list)
    texts: dict[tuple[str, int], str] = field(default_factory=dict)  # data frames
    last: dict[str, int] = field(default_factory=dict)
    connections: int = 0
    closes: list[int | None] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with connect(self.url, open_timeout=5, ping_interval=None) as ws:
                    self.connections += 1
                    op = {
                        "op": "subscribe",
                        "id": 1,
                        "channels": self.channels,
                        "resume": dict(self.last),
                    }
                    await ws.send(orjson.dumps(op).decode())
                    async for raw in ws:
                        self._take(raw if isinstance(raw, str) else raw.decode())
                # The iteration ends quietly on a normal close (1000, 1001).
                self.closes.append(ws.close_code)
            except ConnectionClosed as exc:
                self.closes.append(exc.rcvd.code if exc.rcvd else None)
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
                self.closes.append(None)
            await asyncio.sleep(0.1)

    def _take(self, text: str) -> None:
        frame = orjson.loads(text)
        self.frames.append(frame)
        if frame["type"] in ("data", "snapshot"):
            self.last[frame["channel"]] = frame["seq"]
        if frame["type"] == "data":  # the exact bytes every replica sends for this seq
            self.texts[(frame["channel"], frame["seq"])] = text

    def seqs(self, channel: str, types: tuple[str, ...] = ("data", "snapshot")) -> list[int]:
        return [f["seq"] for f in self.frames if f.get("channel") == channel and f["type"] in types]

    def of_type(self, kind: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind and channel in (None, f.get("channel"))]

    def holes_without_gap(self, channel: str) -> list[tuple[int, int]]:
        """Jumps in seq that no `gap` frame announced (must be empty)."""
        holes, previous, announced = [], None, False
        for frame in self.frames:
            if frame.get("channel") != channel:
                continue
            if frame["type"] == "gap":
                announced = True
            elif frame["type"] in ("data", "snapshot"):
                seq = frame["seq"]
                if previous is not None and seq != previous + 1 and not announced:
                    holes.append((previous, seq))
                previous, announced = seq, False
        return holes
