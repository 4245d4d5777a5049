"""Message bus: sequenced channels with history for resumable streams."""

from cryptopulse.bus.base import Bus, Gap, Message, Subscriber, Subscription, build_message
from cryptopulse.bus.memory import MemoryBus

__all__ = [
    "Bus",
    "Gap",
    "MemoryBus",
    "Message",
    "Subscriber",
    "Subscription",
    "build_message",
    "create_bus",
]


def create_bus(url: str, history: int = 1000) -> Bus:
    """Bus for a settings URL. Only `memory://` exists until the scale-out work lands."""
    if url.startswith("memory://"):
        return MemoryBus(history)
    raise ValueError(f"unsupported bus URL scheme: {url.split(':', 1)[0]}")
