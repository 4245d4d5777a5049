"""The `alerts` stream channel is per caller: a connection subscribes `alerts`, the bus
channel behind it is `alerts:<account>`. `RenamedListener` sits between that bus channel
and the connection and hands every message on under the public name, so frames say
`"channel": "alerts"` and seqs (and resume) are the account channel's own."""

from __future__ import annotations

from cryptopulse.bus.base import BusListener, Gap, Message, Subscription, build_message

__all__ = ["RenamedListener", "rename"]


def rename(message: Message | None, channel: str) -> Message | None:
    if message is None:
        return None
    return build_message(channel, message.seq, message.time, message.data, message.epoch)


def rename_subscription(subscription: Subscription, channel: str) -> Subscription:
    replay = [m for m in (rename(m, channel) for m in subscription.replay) if m is not None]
    return Subscription(replay, subscription.gap, rename(subscription.snapshot, channel))


class RenamedListener:
    """A bus subscriber that forwards to `inner` under the name `public`."""

    __slots__ = ("_inner", "_public")

    def __init__(self, inner: BusListener, public: str) -> None:
        self._inner = inner
        self._public = public

    def deliver(self, message: Message) -> None:
        renamed = rename(message, self._public)
        assert renamed is not None
        self._inner.deliver(renamed)

    def on_resync(
        self, channel: str, gap: Gap | None, snapshot: Message | None, reset: bool
    ) -> None:
        self._inner.on_resync(self._public, gap, rename(snapshot, self._public), reset)

    def on_unavailable(self, channel: str) -> None:
        self._inner.on_unavailable(self._public)
