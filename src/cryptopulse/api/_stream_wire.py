"""How stream frames reach a client's socket.

Under uvicorn's default WebSocket implementation (`websockets-sansio`, what `--ws auto`
picks) the connection writes each frame straight to the transport, synchronously, from
the bus publish that produced it: the frame's WebSocket header is built once per message
and the same bytes are written to every subscriber, as `websockets.broadcast()` does. No
task and no ASGI round trip per frame. When the client negotiated permessage-deflate the
frame is compressed for that socket (its compressor has per-connection state), which is
also what `broadcast()` does.

Under any other ASGI server or WebSocket implementation frames go through the ASGI
`send` (`AsgiWire`): correct everywhere, one await per frame.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Protocol

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

__all__ = ["AsgiWire", "TransportWire", "Wire", "text_frame", "wire_for"]

_clock = time.monotonic

# One text frame, built once for every subscriber of the message: the frames of one
# publish are written back to back, so the last one built is nearly always the one asked.
_last_payload: bytes = b""
_last_frame: bytes = b"\x81\x00"


def text_frame(payload: bytes) -> bytes:
    """The unmasked, unfragmented WebSocket text frame (RFC 6455 5.2) carrying `payload`."""
    global _last_payload, _last_frame
    if payload is _last_payload:
        return _last_frame
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    frame = header + payload
    _last_payload, _last_frame = payload, frame
    return frame


class Wire(Protocol):
    last_write: float  # time.monotonic() of the last frame written

    def writable(self) -> bool:
        """A frame can be written now, synchronously (`write`)."""

    def write(self, payload: bytes | str) -> None:
        """Write one text frame now; only when `writable()`."""

    async def send(self, payload: bytes | str) -> None:
        """Write one text frame, waiting for room in the socket's buffer."""


class TransportWire:
    """Frames written directly to a uvicorn `websockets-sansio` connection's transport."""

    __slots__ = ("_conn", "_deflate", "_proto", "_transport", "_writable", "last_write")

    def __init__(self, proto: WebSocketsSansIOProtocol) -> None:
        self._proto = proto
        self._conn = proto.conn
        self._transport = proto.transport
        # Cleared by uvicorn while the transport is over its high water mark.
        self._writable: asyncio.Event = proto.writable
        # Extensions are negotiated in the handshake: fixed from here on.
        self._deflate = bool(proto.conn.extensions)
        self.last_write = _clock()

    def writable(self) -> bool:
        return self._writable.is_set()

    def write(self, payload: bytes | str) -> None:
        if self._proto.close_sent or self._transport.is_closing():
            return  # closing: the reader sees the disconnect and ends the connection
        if isinstance(payload, str):
            payload = payload.encode()
        if self._deflate:
            conn = self._conn
            try:
                conn.send_text(payload)
            except InvalidState:
                return  # the closing handshake began: this connection is ending
            self._transport.write(b"".join(conn.data_to_send()))
        else:
            self._transport.write(text_frame(payload))
        self.last_write = _clock()

    def close(self, code: int, reason: str) -> None:
        """Put the close frame behind what the socket still holds, without waiting for it
        to drain (a client that stopped reading gets it, and the code, when it reads on).
        uvicorn closes the transport once the app returns; it flushes what is buffered."""
        proto = self._proto
        if proto.close_sent or self._transport.is_closing():
            return
        try:
            self._conn.send_close(code, reason)
        except InvalidState:
            return
        self._transport.write(b"".join(self._conn.data_to_send()))
        proto.close_sent = True  # uvicorn's flag: nothing more goes out on this socket

    async def wait_writable(self) -> None:
        await self._writable.wait()

    async def send(self, payload: bytes | str) -> None:
        await self._writable.wait()
        self.write(payload)


class AsgiWire:
    """Frames sent through ASGI `websocket.send` (any server)."""

    __slots__ = ("_ws", "last_write")

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self.last_write = _clock()

    def writable(self) -> bool:
        return False  # every frame is sent by the connection's sender task

    def write(self, payload: bytes | str) -> None:  # pragma: no cover - never writable
        raise RuntimeError("AsgiWire.write: frames go through send()")

    async def send(self, payload: bytes | str) -> None:
        text = payload if isinstance(payload, str) else frame_text(payload)
        await self._ws.send_text(text)
        self.last_write = _clock()


def wire_for(websocket: WebSocket) -> Wire:
    """A `TransportWire` when the server is uvicorn's websockets-sansio protocol (found
    behind the ASGI `receive` the app was called with), else an `AsgiWire`."""
    for callable_ in (websocket._receive, websocket._send):
        proto = getattr(callable_, "__self__", None)
        if isinstance(proto, WebSocketsSansIOProtocol) and _usable(proto):
            return TransportWire(proto)
    return AsgiWire(websocket)


def _usable(proto: WebSocketsSansIOProtocol) -> bool:
    # The attributes this module relies on; a uvicorn release that renames them falls back.
    return all(
        hasattr(proto, name) for name in ("conn", "transport", "writable", "close_sent")
    ) and hasattr(proto.conn, "extensions")


# ASGI carries text frames as str: on the ASGI path each data frame is decoded once and the
# same str goes to every connection (the server encodes it again per socket).
_TEXT_CACHE_SIZE = 4096
_texts: dict[bytes, str] = {}


def frame_text(frame: bytes) -> str:
    """The text of a serialized frame, decoded once per process while it is recent."""
    text = _texts.get(frame)
    if text is None:
        if len(_texts) >= _TEXT_CACHE_SIZE:
            del _texts[next(iter(_texts))]  # oldest first: frames are sent soon after publish
        text = _texts[frame] = frame.decode()
    return text
