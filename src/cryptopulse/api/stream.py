"""WebSocket stream `/v1/stream` (being written)."""

from fastapi import APIRouter

router = APIRouter()
