"""WebSocket stream `/v1/stream`: live, resumable market data (protocol in docs/stream.md)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from cryptopulse.api._stream_conn import StreamConnection
from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.metrics import STREAM_CONNECTIONS

__all__ = ["router"]

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket, services: ServicesDep) -> None:
    """Subscribe to channels, get a snapshot or a replay, then live messages."""
    await websocket.accept()
    STREAM_CONNECTIONS.inc()
    try:
        await StreamConnection(websocket, services).run()
    finally:
        STREAM_CONNECTIONS.dec()
