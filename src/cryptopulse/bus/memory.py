"""In-process bus: a ring buffer of the last N messages per channel."""

from __future__ import annotations

from collections import deque

import orjson

from cryptopulse.bus.base import Gap, Message, Subscriber, Subscription


class _Channel:
    __slots__ = ("history", "prefix", "seq", "subscribers")

    def __init__(self, name: str, size: int) -> None:
        self.seq = 0
        self.history: deque[Message] = deque(maxlen=size)
        self.subscribers: list[Subscriber] = []
        # The frame up to the seq, encoded once: the same bytes `build_message` makes.
        self.prefix = b'{"type":"data","channel":' + orjson.dumps(name) + b',"seq":'


class _LazyMessage(Message):
    """A message whose JSON is written on first read, then kept: the same bytes as an eager
    `Message` of ``orjson.dumps(record)``, for an immutable record. Most candle updates are
    never read (no subscriber, and pushed out of the history before anyone resumes), so
    they never pay for serialization."""

    __slots__ = ("_data", "_frame", "_prefix", "_record")
    _data: bytes | None
    _frame: bytes | None
    _prefix: bytes
    _record: object

    def __init__(self, channel: str, seq: int, time: int, record: object, prefix: bytes) -> None:
        # Message is frozen: its fields are set the way its generated __init__ sets them.
        setattr_ = object.__setattr__
        setattr_(self, "channel", channel)
        setattr_(self, "seq", seq)
        setattr_(self, "time", time)
        setattr_(self, "epoch", 0)
        setattr_(self, "_record", record)
        setattr_(self, "_prefix", prefix)
        setattr_(self, "_data", None)
        setattr_(self, "_frame", None)

    @property
    def data(self) -> bytes:
        data: bytes | None = self._data
        if data is None:
            data = orjson.dumps(self._record)
            object.__setattr__(self, "_data", data)
        return data

    @property
    def frame(self) -> bytes:
        frame: bytes | None = self._frame
        if frame is None:
            frame = self._prefix + b'%d,"time":%d,"data":%b}' % (self.seq, self.time, self.data)
            object.__setattr__(self, "_frame", frame)
        return frame

    def __eq__(self, other: object) -> bool:
        # The dataclass __eq__ wants the exact class: equal to an eager Message of the
        # same fields, as it stands for one.
        if not isinstance(other, Message):
            return NotImplemented
        return (self.channel, self.seq, self.time, self.data, self.frame, self.epoch) == (
            other.channel,
            other.seq,
            other.time,
            other.data,
            other.frame,
            other.epoch,
        )

    __hash__ = Message.__hash__


class MemoryBus:
    """The embedded bus. Publish and subscribe never await, so a subscribe's replay and
    its first live message can never overlap or leave a hole."""

    def __init__(self, history: int = 1000) -> None:
        self._size = history
        self._channels: dict[str, _Channel] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._channels.clear()

    def _channel(self, name: str) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel(name, self._size)
        return channel

    def publish_nowait(self, channel: str, data: bytes, time: int) -> Message:
        state = self._channels.get(channel) or self._channel(channel)
        state.seq += 1
        # Hot path (every trade publishes ~15 messages): `build_message` inlined with the
        # channel's prefix cached; the frame bytes are identical.
        frame = state.prefix + b'%d,"time":%d,"data":%b}' % (state.seq, time, data)
        message = Message(channel, state.seq, time, data, frame)
        state.history.append(message)
        if state.subscribers:
            for subscriber in tuple(state.subscribers):
                subscriber.deliver(message)
        return message

    def publish_record_nowait(self, channel: str, record: object, time: int) -> Message:
        """`publish_nowait` of ``orjson.dumps(record)``, serialized only when first read.

        `record` must be immutable (a frozen dataclass): its JSON is taken at first read.
        """
        state = self._channels.get(channel) or self._channel(channel)
        state.seq += 1
        message = _LazyMessage(channel, state.seq, time, record, state.prefix)
        state.history.append(message)
        if state.subscribers:
            for subscriber in tuple(state.subscribers):
                subscriber.deliver(message)
        return message

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        return self.publish_nowait(channel, data, time)

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        state = self._channel(channel)
        if subscriber not in state.subscribers:
            state.subscribers.append(subscriber)
        latest = state.history[-1] if state.history else None
        if resume_after is None:
            return Subscription([], None, latest)
        if resume_after == state.seq:
            return Subscription([], None, None)
        oldest = state.history[0].seq if state.history else state.seq + 1
        if resume_after > state.seq:
            # A seq from the future: this history was reset (restart). All of it is new.
            return Subscription([], Gap(1, state.seq), latest)
        if resume_after + 1 < oldest:
            return Subscription([], Gap(resume_after + 1, oldest - 1), latest)
        replay = [m for m in state.history if m.seq > resume_after]
        return Subscription(replay, None, None)

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        state = self._channels.get(channel)
        if state is not None and subscriber in state.subscribers:
            state.subscribers.remove(subscriber)

    async def latest(self, channel: str) -> Message | None:
        state = self._channels.get(channel)
        return state.history[-1] if state and state.history else None

    def channels(self) -> list[str]:
        return sorted(self._channels)

    async def ping(self) -> bool:
        return True
