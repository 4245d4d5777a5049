"""Python SDK of the cryptopulse API: `AsyncClient`, `Client` and the resumable stream.

    async with AsyncClient("http://127.0.0.1:8000", api_key=KEY) as client:
        page = await client.candles("coinbase:BTC-USD", interval="1m", limit=100)
        async for message in client.stream(["trades:coinbase:BTC-USD"]):
            ...

See docs/sdk.md.
"""

from cryptopulse.client._core import RetryPolicy
from cryptopulse.client._routes import ROUTES
from cryptopulse.client.aio import AsyncClient
from cryptopulse.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    RateLimited,
    ServerError,
    StreamClosed,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from cryptopulse.client.stream import Stream, StreamMessage
from cryptopulse.client.sync import Client

__all__ = [
    "ROUTES",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ProblemError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Stream",
    "StreamClosed",
    "StreamMessage",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]
