"""One `/v1/stream` connection: a reader handling client ops, a writer draining the queue.

Only the writer sends data frames, so frames leave in queue order; the connection ends
when the client leaves, a limit is hit (1009, 4008) or the service shuts down (1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from starlette.websockets import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

from cryptopulse.api._stream_auth import StreamGuard
from cryptopulse.api._stream_ops import (
    MAX_CHANNELS,
    Auth,
    OpError,
    Ping,
    Subscribe,
    Unsubscribe,
    authenticated_frame,
    heartbeat_frame,
    parse_op,
    pong_frame,
    subscribed_frame,
    unsubscribed_frame,
)
from cryptopulse.api._stream_queue import SendQueue
from cryptopulse.bus.base import BusUnavailable, Gap, Message, Subscription
from cryptopulse.delivery.channel import RenamedListener, rename_subscription
from cryptopulse.delivery.relay import account_channel
from cryptopulse.runtime import Services
from cryptopulse.sources.base import now_ms

log = logging.getLogger(__name__)

GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TOO_SLOW = 4008
# Closing a client that stopped reading waits for room in its socket buffer; give up then.
_CLOSE_TIMEOUT_S = 5.0


UPSTREAM_UNAVAILABLE = "upstream_unavailable"
_UNAVAILABLE = "market data bus unreachable: live data paused; it resumes by itself"


class _BusListener:
    """The send queue as the bus subscriber, plus what a networked bus reports: a lost
    stretch becomes `gap` + snapshot, an outage one `error` frame (the stream stays open)."""

    __slots__ = ("_down", "_queue", "pending")

    def __init__(self, queue: SendQueue) -> None:
        self._queue = queue
        self._down = False
        # Channels subscribed while the bus was down -> the client's resume seq.
        self.pending: dict[str, int | None] = {}

    def deliver(self, message: Message) -> None:
        self._down = False
        self._queue.deliver(message)

    def on_resync(
        self, channel: str, gap: Gap | None, snapshot: Message | None, reset: bool
    ) -> None:
        self._down = False
        stream = self._queue.channels.get(channel)
        if stream is None:
            return
        if channel in self.pending and snapshot is not None:
            resume = self.pending.pop(channel)
            if resume is not None and snapshot.seq > resume + 1:
                gap = Gap(resume + 1, snapshot.seq - 1)
        if reset:
            stream.last_seq = 0  # seqs restarted: lower ones are new, not duplicates
        self._queue.start(stream, Subscription([], gap, snapshot))

    def on_unavailable(self, channel: str) -> None:
        if not self._down and channel in self._queue.channels:
            self._down = True
            self._queue.put(OpError(UPSTREAM_UNAVAILABLE, _UNAVAILABLE).frame())


class StreamConnection:
    """Serves one accepted WebSocket from the bus until it closes."""

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        settings = services.settings
        self._ws = websocket
        self._bus = services.bus
        self._closing = services.closing
        self._max_frame = settings.ws_max_frame_bytes
        self._heartbeat_s = settings.ws_heartbeat_s
        self._queue = SendQueue(settings.ws_send_queue, self._overflowed)
        self._listener = _BusListener(self._queue)
        self._room = asyncio.Event()  # the writer drained the queue back to capacity
        self._done = asyncio.Event()
        self._close_code: int | None = None
        self._close_reason = ""
        self._guard = StreamGuard(websocket, services.access, self._close, self._notify)
        # Per-caller channels (`alerts`): public name -> (bus channel, renaming listener).
        self._own: dict[str, tuple[str, RenamedListener]] = {}

    def _close(self, code: int, reason: str) -> None:
        """Ask `run` to close with `code`; the first reason given wins."""
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
        self._done.set()

    def _overflowed(self) -> None:
        self._close(TOO_SLOW, "too slow to keep up; resume from the last seq")

    def _notify(self, code: str) -> None:
        self._queue.put(OpError(code, code.replace("_", " ")).frame())

    async def run(self) -> None:
        """Serve until the client leaves, a limit is hit or the service shuts down."""
        await self._guard.handshake()
        tasks = [
            asyncio.create_task(self._guard.watch(), name="stream-auth"),
            asyncio.create_task(self._read_loop(), name="stream-reader"),
            asyncio.create_task(self._write_loop(), name="stream-writer"),
            asyncio.create_task(self._done.wait(), name="stream-done"),
            asyncio.create_task(self._closing.wait(), name="stream-closing"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._guard.release()
            self._queue.stop()
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await self._unsubscribe_all()
        if _report_failures(results):
            self._close(INTERNAL_ERROR, "internal error")
        if self._closing.is_set():
            self._close(GOING_AWAY, "server shutting down; reconnect and resume")
        if self._close_code is not None:
            await self._send_close(self._close_code, self._close_reason)

    async def _read_loop(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw: str | bytes = message.get("text") or message.get("bytes") or b""
            if _too_big(raw, self._max_frame):
                self._close(MESSAGE_TOO_BIG, f"frames are limited to {self._max_frame} bytes")
                return
            await self._handle(raw)
            if len(self._queue) > self._queue.capacity:
                # The client sends ops faster than it reads the replies: stop reading
                # (TCP pushes back on it) until the writer catches up.
                self._room.clear()
                await self._room.wait()

    async def _write_loop(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                try:
                    async with asyncio.timeout(self._heartbeat_s):
                        await queue.ready.wait()
                except TimeoutError:
                    await self._ws.send_text(heartbeat_frame(now_ms()))
                continue
            text = queue.pop()
            if len(queue) <= queue.capacity:
                self._room.set()
            if text is not None:
                await self._ws.send_text(text)

    async def _handle(self, raw: str | bytes) -> None:
        try:
            op = parse_op(raw)
            if isinstance(op, Auth):
                await self._guard.auth(op.token, None)
                self._queue.put(authenticated_frame())
                return
            self._guard.check_op(op.id)
            if isinstance(op, Subscribe):
                await self._subscribe(op)
            elif isinstance(op, Unsubscribe):
                await self._unsubscribe(op)
            elif isinstance(op, Ping):
                self._queue.put(pong_frame(op.id))
        except OpError as exc:
            self._queue.put(exc.frame())

    async def _subscribe(self, op: Subscribe) -> None:
        subscribed = self._queue.channels
        new = [name for name in op.channels if name not in subscribed]
        self._guard.check_subscribe(op.channels, len(subscribed) + len(new), op.id)
        if len(subscribed) + len(new) > MAX_CHANNELS:
            message = f"at most {MAX_CHANNELS} channels per connection"
            raise OpError("too_many_subscriptions", message, op.id)
        self._queue.put(subscribed_frame(op.id, op.channels))
        # A channel subscribed already keeps its stream; its resume is ignored.
        for name in new:
            channel = self._queue.open(name)
            resume = op.resume.get(name)
            try:
                bus_name, listener = self._target(name)
                subscription = await self._bus.subscribe(bus_name, listener, resume)
                if name in self._own:
                    subscription = rename_subscription(subscription, name)
            except BusUnavailable:
                # Stays subscribed: when the bus is back the channel gets a snapshot
                # (and a gap from `resume` if messages were missed) by itself.
                self._listener.pending[name] = resume
                subscription = Subscription([], None, None)
                self._queue.put(OpError(UPSTREAM_UNAVAILABLE, _UNAVAILABLE, op.id).frame())
            self._queue.start(channel, subscription)

    async def _unsubscribe(self, op: Unsubscribe) -> None:
        for name in op.channels:
            if self._queue.remove(name):
                await self._bus.unsubscribe(*self._target(name))
        self._queue.put(unsubscribed_frame(op.id, op.channels))

    async def _unsubscribe_all(self) -> None:
        for name in list(self._queue.channels):
            self._queue.remove(name)
            try:
                await self._bus.unsubscribe(*self._target(name))
            except Exception:  # one failure must not leave the other channels subscribed
                log.exception("stream: unsubscribe from %s failed", name)

    def _target(self, name: str) -> tuple[str, _BusListener | RenamedListener]:
        """The bus channel and subscriber behind a subscribed name (`alerts` is per caller)."""
        if name != "alerts":
            return name, self._listener
        own = self._own.get(name)
        if own is None:
            assert self._guard.principal is not None
            bus_name = account_channel(self._guard.principal.account)
            own = self._own[name] = (bus_name, RenamedListener(self._listener, name))
        return own

    async def _send_close(self, code: int, reason: str) -> None:
        if self._ws.client_state is WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(TimeoutError, OSError, WebSocketDisconnect, WebSocketDisconnected):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await self._ws.close(code, reason)


def _too_big(raw: str | bytes, limit: int) -> bool:
    if isinstance(raw, bytes) or len(raw) > limit:
        return len(raw) > limit
    # n characters are n to 4n UTF-8 bytes: encode only when the answer depends on it.
    return len(raw) * 4 > limit and len(raw.encode()) > limit


def _report_failures(results: Sequence[object]) -> bool:
    """Log unexpected errors of the connection's tasks; a client leaving is not one."""
    failed = False
    for result in results:
        if isinstance(result, Exception) and not isinstance(
            result, OSError | WebSocketDisconnect | WebSocketDisconnected
        ):
            log.error("stream connection failed", exc_info=result)
            failed = True
    return failed
