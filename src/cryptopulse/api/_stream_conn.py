"""One `/v1/stream` connection: a reader handling client ops; frames leave through the
send queue, written at once while the socket has room and in queue order otherwise. The
connection ends when the client leaves, a limit is hit (1009, 4008) or the service shuts
down (1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

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
from cryptopulse.api._stream_wire import TransportWire, wire_for
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
    """Serves one accepted WebSocket from the bus until it closes.

    An idle connection holds no task of its own besides the one the server runs it in
    (which reads the client's ops): live frames are written from the publisher's call
    (`SendQueue.deliver`), a sender task exists only while frames wait for the socket,
    and the heartbeat and credential checks are timers.
    """

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        settings = services.settings
        self._ws = websocket
        self._bus = services.bus
        self._closing = services.closing
        self._max_frame = settings.ws_max_frame_bytes
        self._heartbeat_s = settings.ws_heartbeat_s
        self._wire = wire_for(websocket)
        direct = self._wire if isinstance(self._wire, TransportWire) else None
        self._queue = SendQueue(settings.ws_send_queue, self._overflowed, direct, self._backlog)
        self._listener = _BusListener(self._queue)
        self._sender: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # the sender drained the queue to capacity
        self._heartbeat: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._waiting = False  # `run` is parked on the client (or on room): cancel to stop it
        self._interrupted = False
        self._close_code: int | None = None
        self._close_reason = ""
        self._guard = StreamGuard(websocket, services.access, self._close, self._notify)
        # Per-caller channels (`alerts`): public name -> (bus channel, renaming listener).
        self._own: dict[str, tuple[str, RenamedListener]] = {}

    def _close(self, code: int, reason: str) -> None:
        """Ask `run` to close with `code`; the first reason given wins."""
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
        if self._waiting and not self._interrupted and self._task is not None:
            self._interrupted = True
            self._task.cancel()

    def _overflowed(self) -> None:
        self._close(TOO_SLOW, "too slow to keep up; resume from the last seq")

    def _notify(self, code: str) -> None:
        self._queue.put(OpError(code, code.replace("_", " ")).frame())

    async def run(self) -> None:
        """Serve until the client leaves, a limit is hit or the service shuts down."""
        await self._guard.handshake()
        task = self._task = asyncio.current_task()
        assert task is not None
        if self._closing.is_set():
            self._close(GOING_AWAY, "server shutting down; reconnect and resume")
        failed = False
        if self._close_code is None:
            _register(self)
            self._guard.start()
            self._heartbeat = asyncio.get_running_loop().call_later(self._heartbeat_s, self._beat)
            try:
                await self._read_loop()
            except asyncio.CancelledError:
                # Our own interruption (`_close`) ends the read; any other cancel goes on.
                if not self._interrupted or task.uncancel() > 0:
                    raise
            except (OSError, WebSocketDisconnect, WebSocketDisconnected):
                pass  # the client left
            except Exception:
                log.exception("stream connection failed")
                failed = True
            finally:
                await self._finish()
        else:
            self._guard.release()  # refused before serving (1008, 4029, 1001)
        if failed:
            self._close(INTERNAL_ERROR, "internal error")
        if self._closing.is_set():
            self._close(GOING_AWAY, "server shutting down; reconnect and resume")
        if self._close_code is not None:
            await self._send_close(self._close_code, self._close_reason)

    async def _finish(self) -> None:
        self._waiting = False
        _unregister(self)
        self._guard.stop()
        self._guard.release()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._queue.stop()
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await self._unsubscribe_all()

    async def _read_loop(self) -> None:
        ws, queue = self._ws, self._queue
        while self._close_code is None:
            self._waiting = True
            try:
                message = await ws.receive()
            finally:
                self._waiting = False
            if message["type"] == "websocket.disconnect":
                return
            raw: str | bytes = message.get("text") or message.get("bytes") or b""
            if _too_big(raw, self._max_frame):
                self._close(MESSAGE_TOO_BIG, f"frames are limited to {self._max_frame} bytes")
                return
            await self._handle(raw)
            if len(queue) > queue.capacity and self._close_code is None:
                # The client sends ops faster than it reads the replies: stop reading
                # (TCP pushes back on it) until the sender catches up.
                room = self._room = self._room or asyncio.Event()
                room.clear()
                self._waiting = True
                try:
                    await room.wait()
                finally:
                    self._waiting = False

    def _backlog(self) -> None:
        """Frames wait in the queue: start the sender unless it runs already."""
        if self._sender is None and not self._queue.stopped:
            self._sender = asyncio.create_task(self._send_loop(), name="stream-sender")
            self._sender.add_done_callback(self._sender_done)

    async def _send_loop(self) -> None:
        queue, wire = self._queue, self._wire
        try:
            if isinstance(wire, TransportWire):
                while queue:
                    if not wire.writable():
                        # Wait before taking the next frame: until it is written, the
                        # publisher must keep queueing behind it, never write past it.
                        await wire.wait_writable()
                        continue
                    frame = queue.pop()
                    self._made_room()
                    if frame is not None:
                        wire.write(frame)
            else:
                while queue:
                    frame = queue.pop()
                    self._made_room()
                    if frame is not None:
                        await wire.send(frame)
        finally:
            self._sender = None  # set here, not in the callback: an append may come first

    def _made_room(self) -> None:
        if self._room is not None and len(self._queue) <= self._queue.capacity:
            self._room.set()

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(
            exc, OSError | WebSocketDisconnect | WebSocketDisconnected
        ):
            log.error("stream sender failed", exc_info=exc)
            self._close(INTERNAL_ERROR, "internal error")

    def _beat(self) -> None:
        """A heartbeat after `ws_heartbeat_s` in which nothing was sent; re-armed each time."""
        self._heartbeat = None
        queue = self._queue
        if queue.stopped:
            return
        wait = self._heartbeat_s - (time.monotonic() - self._wire.last_write)
        if wait <= 0:
            if not queue:  # frames waiting for a slow socket: the client is not idle
                queue.put(heartbeat_frame(now_ms()))
            wait = self._heartbeat_s
        self._heartbeat = asyncio.get_running_loop().call_later(wait, self._beat)

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
        wire = self._wire
        if isinstance(wire, TransportWire) and not wire.writable():
            # Backed up (a slow client, 4008): waiting for room could outlast the client's
            # patience and ours; the close frame goes behind what is buffered instead.
            wire.close(code, reason)
            return
        with contextlib.suppress(TimeoutError, OSError, WebSocketDisconnect, WebSocketDisconnected):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await self._ws.close(code, reason)


def _too_big(raw: str | bytes, limit: int) -> bool:
    if isinstance(raw, bytes) or len(raw) > limit:
        return len(raw) > limit
    # n characters are n to 4n UTF-8 bytes: encode only when the answer depends on it.
    return len(raw) * 4 > limit and len(raw.encode()) > limit


# Shutdown: one waiter per `services.closing` event closes every open connection (1001),
# instead of a waiting task per connection.
_open: dict[asyncio.Event, tuple[set[StreamConnection], asyncio.Task[None]]] = {}


def _register(connection: StreamConnection) -> None:
    event = connection._closing
    entry = _open.get(event)
    if entry is None:
        connections: set[StreamConnection] = set()
        waiter = asyncio.create_task(_close_all(event, connections), name="stream-shutdown")
        entry = _open[event] = (connections, waiter)
    entry[0].add(connection)


def _unregister(connection: StreamConnection) -> None:
    event = connection._closing
    entry = _open.get(event)
    if entry is None:
        return
    connections, waiter = entry
    connections.discard(connection)
    if not connections:
        del _open[event]
        waiter.cancel()


async def _close_all(event: asyncio.Event, connections: set[StreamConnection]) -> None:
    await event.wait()
    for connection in list(connections):
        connection._close(GOING_AWAY, "server shutting down; reconnect and resume")
