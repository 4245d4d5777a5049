"""In-process bus: a ring buffer of the last N messages per channel."""

from __future__ import annotations

import orjson

from cryptopulse.bus.base import Gap, Message, Subscriber, Subscription
from cryptopulse.domain._untracked import untrack

# A channel's history is a dict of seq -> frame bytes (the seqs are consecutive: the oldest
# is `seq - len + 1`). A dict holding only ints and bytes is never tracked by the garbage
# collector, so the ~10^5–10^7 messages the histories hold cost the full collections
# nothing: not even the visit of each entry that a deque of (untracked) tuples still cost,
# ~20 ns a message per full collection (docs/benchmarks.md). Time and payload are read
# back from the frame, which is built by a bytes format sized to fit (the bytes orjson
# returns keep a 4 KB allocation behind each one).
_TIME = b',"time":'
_DATA = b',"data":'


class _Channel:
    """A channel's seq and history. It holds a str, ints, bytes and a dict of int ->
    bytes only, so it is taken off the collector's lists when made (domain/_untracked.py):
    a busy process has ~15 channels per instrument (23,800 at 1,400 instruments), which
    every full collection walked. Its subscribers, live objects, are kept by the bus."""

    __slots__ = ("history", "name", "prefix", "seq")

    def __init__(self, name: str) -> None:
        self.name = name
        self.seq = 0
        self.history: dict[int, bytes] = {}
        # The frame up to the seq, encoded once: the same bytes `build_message` makes.
        self.prefix = b'{"type":"data","channel":' + orjson.dumps(name) + b',"seq":'
        untrack(self)

    def message(self, seq: int) -> Message:
        """The Message of a history entry (time and payload are read from its frame)."""
        frame = self.history[seq]
        at = frame.index(_TIME, len(self.prefix)) + len(_TIME)
        data = frame.index(_DATA, at)
        return Message(self.name, seq, int(frame[at:data]), frame[data + len(_DATA) : -1], frame)

    @property
    def oldest(self) -> int:
        """The oldest seq the history holds (seq + 1 when it is empty)."""
        return self.seq - len(self.history) + 1


class MemoryBus:
    """The embedded bus. Publish and subscribe never await, so a subscribe's replay and
    its first live message can never overlap or leave a hole."""

    def __init__(self, history: int = 1000) -> None:
        self._size = history
        self._channels: dict[str, _Channel] = {}
        # Channel -> its subscribers, for channels that have some. A tuple is replaced,
        # never mutated: publishing iterates it without a copy.
        self._subscribers: dict[str, tuple[Subscriber, ...]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._channels.clear()
        self._subscribers.clear()

    def _channel(self, name: str) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel(name)
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
        history = state.history
        history[seq] = frame
        if len(history) > self._size:
            del history[seq - self._size]
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            return None
        message = Message(channel, seq, time, data, frame)
        for subscriber in subscribers:
            subscriber.deliver(message)
        return message

    async def publish(self, channel: str, data: bytes, time: int) -> Message:
        message = self.publish_nowait(channel, data, time)
        if message is None:  # no subscriber: built from the history entry just written
            state = self._channels[channel]
            message = state.message(state.seq)
        return message

    async def subscribe(
        self, channel: str, subscriber: Subscriber, resume_after: int | None = None
    ) -> Subscription:
        state = self._channel(channel)
        subscribers = self._subscribers.get(channel, ())
        if subscriber not in subscribers:
            self._subscribers[channel] = (*subscribers, subscriber)
        latest = state.message(state.seq) if state.history else None
        if resume_after is None:
            return Subscription([], None, latest)
        if resume_after == state.seq:
            return Subscription([], None, None)
        oldest = state.oldest
        if resume_after > state.seq:
            # A seq from the future: this history was reset (restart). All of it is new.
            return Subscription([], Gap(1, state.seq), latest)
        if resume_after + 1 < oldest:
            return Subscription([], Gap(resume_after + 1, oldest - 1), latest)
        replay = [state.message(seq) for seq in range(resume_after + 1, state.seq + 1)]
        return Subscription(replay, None, None)

    async def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        subscribers = list(self._subscribers.get(channel, ()))
        if subscriber in subscribers:
            subscribers.remove(subscriber)
            if subscribers:
                self._subscribers[channel] = tuple(subscribers)
            else:
                del self._subscribers[channel]

    async def latest(self, channel: str) -> Message | None:
        state = self._channels.get(channel)
        return state.message(state.seq) if state and state.history else None

    def channels(self) -> list[str]:
        return sorted(self._channels)

    async def ping(self) -> bool:
        return True
