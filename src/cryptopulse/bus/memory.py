"""In-process bus: a ring buffer of the last N messages per channel."""

from __future__ import annotations

from collections import deque

import orjson

from cryptopulse.bus.base import Gap, Message, Subscriber, Subscription

# One history entry: (seq, time, frame). A tuple of atomic values is untracked by the
# garbage collector after the first collection it survives, so the ~10^5–10^6 messages the
# histories hold cost the full collections nothing; a Message object per entry (and the
# record it was built from) kept them all tracked, and a full collection walked them all
# (1.3 s pauses in the mixed benchmark, docs/benchmarks.md). The frame is kept rather than
# the payload's JSON because it is built by a bytes format, sized to fit: the bytes that
# orjson returns keep a 4 KB allocation behind each one, ~4 KB per retained message.
_Entry = tuple[int, int, bytes]
_DATA = b',"data":'


class _Channel:
    __slots__ = ("history", "name", "prefix", "seq", "subscribers")

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.seq = 0
        self.history: deque[_Entry] = deque(maxlen=size)
        self.subscribers: list[Subscriber] = []
        # The frame up to the seq, encoded once: the same bytes `build_message` makes.
        self.prefix = b'{"type":"data","channel":' + orjson.dumps(name) + b',"seq":'

    def message(self, entry: _Entry) -> Message:
        """The Message of a history entry (its payload is the frame's `data` member)."""
        seq, time, frame = entry
        start = frame.index(_DATA, len(self.prefix)) + len(_DATA)
        return Message(self.name, seq, time, frame[start:-1], frame)


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

    def publish_nowait(self, channel: str, data: bytes, time: int) -> Message | None:
        """Publish; the message delivered to subscribers, or None when there were none
        (no Message is built then: most channels have no subscriber most of the time)."""
        state = self._channels.get(channel) or self._channel(channel)
        state.seq += 1
        seq = state.seq
        # Hot path (every trade publishes ~15 messages): `build_message` inlined with the
        # channel's prefix cached; the frame bytes are identical.
        frame = state.prefix + b'%d,"time":%d,"data":%b}' % (seq, time, data)
        state.history.append((seq, time, frame))
        if not state.subscribers:
            return None
        message = Message(channel, seq, time, data, frame)
        for subscriber in tuple(state.subscribers):
            subscriber.deliver(message)
        return message

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        state = self._channels.get(channel) or self._channel(channel)
        return self.publish_nowait(channel, data, time) or state.message(state.history[-1])

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        state = self._channel(channel)
        if subscriber not in state.subscribers:
            state.subscribers.append(subscriber)
        latest = state.message(state.history[-1]) if state.history else None
        if resume_after is None:
            return Subscription([], None, latest)
        if resume_after == state.seq:
            return Subscription([], None, None)
        oldest = state.history[0][0] if state.history else state.seq + 1
        if resume_after > state.seq:
            # A seq from the future: this history was reset (restart). All of it is new.
            return Subscription([], Gap(1, state.seq), latest)
        if resume_after + 1 < oldest:
            return Subscription([], Gap(resume_after + 1, oldest - 1), latest)
        replay = [state.message(e) for e in state.history if e[0] > resume_after]
        return Subscription(replay, None, None)

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        state = self._channels.get(channel)
        if state is not None and subscriber in state.subscribers:
            state.subscribers.remove(subscriber)

    async def latest(self, channel: str) -> Message | None:
        state = self._channels.get(channel)
        return state.message(state.history[-1]) if state and state.history else None

    def channels(self) -> list[str]:
        return sorted(self._channels)

    async def ping(self) -> bool:
        return True
