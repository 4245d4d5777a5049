"""WebSocket stream `/v1/stream`: live, resumable market data (protocol in docs/stream.md).

The app dispatches this path itself, before the middleware stack and the router
(`api.app.CryptopulseApp`): every middleware passes WebSocket scopes through untouched,
yet each would hold a coroutine frame for as long as the connection lives. Going through
them cost ~26 coroutines and ~240 garbage-collected objects per open connection, which
every full collection walks (docs/decisions.md).
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from cryptopulse.api._stream_conn import StreamConnection
from cryptopulse.api.metrics import STREAM_CONNECTIONS
from cryptopulse.runtime import Services

__all__ = ["session"]


async def session(scope: Scope, receive: Receive, send: Send) -> None:
    """Subscribe to channels, get a snapshot or a replay, then live messages."""
    websocket = WebSocket(scope, receive, send)
    services: Services = scope["app"].state.services
    await websocket.accept()
    STREAM_CONNECTIONS.inc()
    try:
        await StreamConnection(websocket, services).run()
    finally:
        STREAM_CONNECTIONS.dec()
