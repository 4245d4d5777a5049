"""Message bus: sequenced channels with history for resumable streams."""

from cryptopulse.bus.base import (
    Bus,
    BusListener,
    BusUnavailable,
    Gap,
    Message,
    Subscriber,
    Subscription,
    build_message,
)
from cryptopulse.bus.memory import MemoryBus

__all__ = [
    "Bus",
    "BusListener",
    "BusUnavailable",
    "Gap",
    "MemoryBus",
    "Message",
    "Subscriber",
    "Subscription",
    "build_message",
    "create_bus",
]


def create_bus(
    url: str,
    history: int = 1000,
    *,
    prefix: str = "cp:",
    timeout_s: float = 0.8,
    outbox: int = 100_000,
) -> Bus:
    """Bus for a settings URL: `memory://` (in process) or `redis://` / `rediss://`."""
    if url.startswith("memory://"):
        return MemoryBus(history)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from cryptopulse.bus.redis import RedisBus  # noqa: PLC0415  (redis only when used)

        return RedisBus(url, history, prefix=prefix, timeout_s=timeout_s, outbox=outbox)
    raise ValueError(f"unsupported bus URL scheme: {url.split(':', 1)[0]}")
