"""The bus protocol: per-channel sequenced messages, a bounded history for resume, fan-out.

Every channel has a gap-free `seq` starting at 1. A message is serialized once at publish;
the same bytes go to every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import orjson


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    seq: int
    time: int
    data: bytes  # the JSON of the payload alone
    frame: bytes  # the whole `data` frame sent to stream clients
    # Which history the seq belongs to: changes when a bus loses its history (Redis
    # flushed). Always 0 on the memory bus; not part of the frame.
    epoch: int = 0

    def snapshot_frame(self) -> bytes:
        return b"".join(
            (
                b'{"type":"snapshot","channel":',
                orjson.dumps(self.channel),
                b',"seq":',
                str(self.seq).encode(),
                b',"time":',
                str(self.time).encode(),
                b',"data":',
                self.data,
                b"}",
            )
        )


def build_message(channel: str, seq: int, time: int, data: bytes, epoch: int = 0) -> Message:
    frame = b"".join(
        (
            b'{"type":"data","channel":',
            orjson.dumps(channel),
            b',"seq":',
            str(seq).encode(),
            b',"time":',
            str(time).encode(),
            b',"data":',
            data,
            b"}",
        )
    )
    return Message(channel, seq, time, data, frame, epoch)


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages from_seq..to_seq (inclusive) can no longer be replayed."""

    from_seq: int
    to_seq: int


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a new subscriber gets before live messages: a replay, or a gap and a snapshot."""

    replay: list[Message]
    gap: Gap | None
    snapshot: Message | None


class Subscriber(Protocol):
    def deliver(self, message: Message) -> None:
        """Take one live message; must not block (queue it or drop the subscriber)."""


class BusUnavailable(Exception):
    """The bus backend (Redis) cannot be reached; the caller should retry later."""


@runtime_checkable
class BusListener(Subscriber, Protocol):
    """A subscriber that also hears about trouble on a networked bus (all optional to
    implement: the bus checks with isinstance). Calls never block."""

    def on_resync(
        self, channel: str, gap: Gap | None, snapshot: Message | None, reset: bool
    ) -> None:
        """Send `gap` (when messages were lost) and then `snapshot`, the newest message,
        instead of live messages the bus could not deliver. `reset`: seqs restarted below
        those sent before (the history was lost with every publisher)."""

    def on_unavailable(self, channel: str) -> None:
        """The bus lost its backend; live messages pause until it is back."""


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        """Append `data` (serialized JSON) to `channel`, fan it out, return the message."""
        ...

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        """Register `subscriber` for live messages and return what precedes them.

        With `resume_after`, the replay holds every message after that seq when the
        history still has them; otherwise `gap` says what is lost and `snapshot` is
        the latest message. Without it, `snapshot` is the latest message (if any).
        """
        ...

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None: ...

    async def latest(self, channel: str) -> Message | None: ...

    def channels(self) -> list[str]: ...

    async def ping(self) -> bool:
        """True when the backend answers (always, in process); raises or False otherwise."""
        ...
