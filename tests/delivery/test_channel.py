"""The per-account `alerts` channel: `RenamedListener` hands on live messages and the bus's
trouble reports (`gap` + snapshot, Redis unavailable) under the public name."""

from __future__ import annotations

from cryptopulse.bus import Gap, Message, build_message
from cryptopulse.bus.base import BusListener
from cryptopulse.delivery.channel import RenamedListener


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def deliver(self, message: Message) -> None:
        self.seen.append(("data", (message.channel, message.seq)))

    def on_resync(
        self, channel: str, gap: Gap | None, snapshot: Message | None, reset: bool
    ) -> None:
        snap = (snapshot.channel, snapshot.seq) if snapshot is not None else None
        self.seen.append(("resync", (channel, gap, snap, reset)))

    def on_unavailable(self, channel: str) -> None:
        self.seen.append(("unavailable", channel))


def test_renamed_listener_passes_on_data_gaps_and_outages() -> None:
    inner = Recorder()
    listener = RenamedListener(inner, "alerts")
    assert isinstance(listener, BusListener)  # the Redis reader checks exactly this
    listener.deliver(build_message("alerts:acct", 3, 1, b"{}"))
    listener.on_resync("alerts:acct", Gap(4, 6), build_message("alerts:acct", 7, 2, b"{}"), False)
    listener.on_unavailable("alerts:acct")
    assert inner.seen == [
        ("data", ("alerts", 3)),
        ("resync", ("alerts", Gap(4, 6), ("alerts", 7), False)),
        ("unavailable", "alerts"),
    ]
