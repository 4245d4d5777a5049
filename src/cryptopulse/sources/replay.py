"""Replay of recorded exchange traffic through the real parsers.

Each server message of a capture file is parsed by the adapter that its connection's URL
names (`capture.protocol_for_url`), with the recorded receipt time as `received`, and the
events go to the sink in file order. `speed=None` replays as fast as possible; `speed=N`
keeps the recorded spacing between messages divided by N.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources import binance, coinbase
from cryptopulse.sources.base import EventSink, FeedStatus, SourceKind
from cryptopulse.sources.capture import Exchange, protocol_for_url, read_capture
from cryptopulse.sources.kraken import KrakenParser

log = logging.getLogger(__name__)

Parse = Callable[[str, int], list[Trade | Ticker]]


@dataclass(slots=True)
class ReplayCount:
    """What one instrument got from a replay."""

    trades: int = 0
    tickers: int = 0


def new_parser(exchange: Exchange) -> Parse:
    """A parser for one connection (Kraken's keeps per-connection channel state)."""
    if exchange == "coinbase":
        return coinbase.parse_message
    if exchange == "binance":
        return binance.parse_message
    return KrakenParser().parse


async def replay_files(
    paths: Sequence[Path | str],
    sink: EventSink,
    speed: float | None = None,
    status: FeedStatus | None = None,
) -> dict[str, ReplayCount]:
    """Replay every file in order into `sink`; returns the events sent per instrument."""
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive, or None for as fast as possible")
    counts: dict[str, ReplayCount] = {}
    for path in paths:
        await _replay_file(Path(path), sink, speed, counts, status)
    return counts


async def _replay_file(
    path: Path,
    sink: EventSink,
    speed: float | None,
    counts: dict[str, ReplayCount],
    status: FeedStatus | None,
) -> None:
    parse: Parse | None = None
    previous: float | None = None
    for line in read_capture(path):
        if line.direction == "open":
            exchange = protocol_for_url(line.url or "")
            parse = new_parser(exchange) if exchange is not None else None
            if parse is None:
                log.warning("replay: no adapter for %s in %s; skipping it", line.url, path)
            continue
        if line.direction != "received" or parse is None:
            continue
        if speed is not None and previous is not None and line.received > previous:
            await asyncio.sleep((line.received - previous) / speed)
        previous = line.received
        received_ms = int(line.received * 1000)
        try:
            events = parse(line.payload, received_ms)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("replay: unreadable message in %s: %s", path, exc)
            continue
        if status is not None:
            status.messages += 1
            status.last_message = received_ms
        await _send(events, sink, counts)
        if speed is None:
            await asyncio.sleep(0)  # let the rest of the service run between messages


async def _send(
    events: list[Trade | Ticker], sink: EventSink, counts: dict[str, ReplayCount]
) -> None:
    for event in events:
        count = counts.setdefault(event.instrument, ReplayCount())
        if isinstance(event, Trade):
            count.trades += 1
            await sink.on_trade(event)
        else:
            count.tickers += 1
            await sink.on_ticker(event)


class ReplaySource:
    """A `Source` that replays capture files once, then returns."""

    name = "replay"
    kind: SourceKind = "replay"

    def __init__(self, paths: Sequence[Path], speed: float | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.speed = speed
        self.status = FeedStatus(self.name, "replay", [])
        self.counts: dict[str, ReplayCount] = {}

    async def run(self, sink: EventSink) -> None:
        """Replay all files; `counts` holds the result afterwards."""
        self.status.connected = True
        try:
            self.counts = await replay_files(self.paths, sink, self.speed, self.status)
        finally:
            self.status.connected = False
        self.status.instruments = sorted(self.counts)
