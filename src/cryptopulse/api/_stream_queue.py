"""The bounded send queue of one stream connection; it is the connection's bus `Subscriber`.

`deliver` runs inside the publisher's call and never blocks. When nothing is queued and
the socket can take a frame (`Wire.writable`), the frame is written right there, the same
bytes for every subscriber, like `websockets.broadcast()`. Otherwise it waits here, in
order, for the connection's sender: a ticker channel keeps only its latest pending message
(conflation), any other live message takes a slot, and a full queue reports overflow (the
connection then closes with 4008). Replay, snapshots and control frames answer a client
op, so they do not count against the live capacity; the reader stops reading ops while the
queue is over capacity instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum

from cryptopulse.api._stream_ops import gap_frame, is_conflated
from cryptopulse.api._stream_wire import Wire
from cryptopulse.bus.base import Message, Subscription


class _Kind(Enum):
    LIVE = 1
    REPLAY = 2
    SNAPSHOT = 3


class StreamChannel:
    """One channel subscribed on one connection."""

    __slots__ = ("conflate", "early", "last_seq", "latest", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.conflate = is_conflated(name)
        # Seqs start at 1; anything at or below this was sent already (or superseded).
        self.last_seq = 0
        # Live messages that arrive while the bus is still answering the subscribe.
        self.early: list[Message] | None = []
        # Conflated channels: the newest unsent message; a marker is queued while set.
        self.latest: Message | None = None


_Entry = str | StreamChannel | tuple[StreamChannel, Message, _Kind]


def _nothing() -> None:
    return None


class SendQueue:
    """Frames waiting for the connection's sender, in send order.

    `wire`: where frames go directly while nothing is queued (None: everything queues).
    `on_backlog`: called when the queue stops being empty (start the sender).
    """

    __slots__ = (
        "_entries",
        "_live",
        "_on_backlog",
        "_on_overflow",
        "_stopped",
        "_wire",
        "capacity",
        "channels",
    )

    def __init__(
        self,
        capacity: int,
        on_overflow: Callable[[], None],
        wire: Wire | None = None,
        on_backlog: Callable[[], None] = _nothing,
    ) -> None:
        self.capacity = capacity
        self.channels: dict[str, StreamChannel] = {}
        self._on_overflow = on_overflow
        self._on_backlog = on_backlog
        self._wire = wire
        self._entries: deque[_Entry] = deque()
        self._live = 0  # queued live entries of non-conflated channels
        self._stopped = False

    def __len__(self) -> int:
        return len(self._entries)

    def open(self, name: str) -> StreamChannel:
        """Register a channel before the bus subscribe, so no live message is missed."""
        channel = self.channels[name] = StreamChannel(name)
        return channel

    def start(self, channel: StreamChannel, subscription: Subscription) -> None:
        """Queue what precedes live messages, then the live ones that came meanwhile."""
        if subscription.gap is not None:
            self.put(gap_frame(channel.name, subscription.gap))
        for message in subscription.replay:
            self._append((channel, message, _Kind.REPLAY))
        if subscription.snapshot is not None:
            self._append((channel, subscription.snapshot, _Kind.SNAPSHOT))
        early, channel.early = channel.early or [], None
        for message in early:
            self.deliver(message)

    def remove(self, name: str) -> bool:
        """Forget a channel; its queued frames are dropped when they reach the front."""
        return self.channels.pop(name, None) is not None

    def stop(self) -> None:
        """Take nothing more (the connection is closing) and free what is queued."""
        self._stopped = True
        self._entries.clear()
        self._live = 0

    @property
    def stopped(self) -> bool:
        return self._stopped

    def put(self, text: str) -> None:
        """Queue a control frame (reply, error, gap)."""
        self._append(text)

    def deliver(self, message: Message) -> None:
        """The bus `Subscriber` callback: send or queue a live message without blocking."""
        channel = self.channels.get(message.channel)
        if channel is None or self._stopped:
            return
        if channel.early is not None:
            channel.early.append(message)
            return
        wire = self._wire
        if not self._entries and wire is not None and wire.writable():
            # The fast path: nothing waits before it and the socket has room.
            if message.seq > channel.last_seq:
                channel.last_seq = message.seq
                wire.write(message.frame)
        elif channel.conflate:
            if channel.latest is None:
                self._queue(channel)
            channel.latest = message
        elif self._live >= self.capacity:
            self.stop()
            self._on_overflow()
        else:
            self._live += 1
            self._queue((channel, message, _Kind.LIVE))

    def _append(self, entry: _Entry) -> None:
        if self._stopped:
            return
        wire = self._wire
        if not self._entries and wire is not None and wire.writable():
            frame = self._frame(entry)
            if frame is not None:
                wire.write(frame)
        else:
            self._queue(entry)

    def _queue(self, entry: _Entry) -> None:
        entries = self._entries
        entries.append(entry)
        if len(entries) == 1:
            self._on_backlog()

    def pop(self) -> bytes | str | None:
        """The next frame, or None when that entry turned out to need no frame."""
        entry = self._entries.popleft()
        if isinstance(entry, tuple) and entry[2] is _Kind.LIVE:
            self._live -= 1
        return self._frame(entry)

    def _frame(self, entry: _Entry) -> bytes | str | None:
        if isinstance(entry, str):
            return entry
        if isinstance(entry, StreamChannel):
            message, entry.latest = entry.latest, None
            return None if message is None else self._data(entry, message, _Kind.LIVE)
        channel, message, kind = entry
        return self._data(channel, message, kind)

    def _data(self, channel: StreamChannel, message: Message, kind: _Kind) -> bytes | None:
        # Skip frames of a channel unsubscribed since, and anything at or below the last
        # seq sent: replay and live overlap on some buses, and a late snapshot is stale.
        if self.channels.get(channel.name) is not channel or message.seq <= channel.last_seq:
            return None
        channel.last_seq = message.seq
        if kind is _Kind.SNAPSHOT:
            return message.snapshot_frame()
        return message.frame
