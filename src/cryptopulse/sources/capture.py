"""Reader of recorded exchange traffic (the cryptofeed capture format).

One message a line:

- ``URL <-> EPOCH``: a connection to URL was opened at EPOCH (seconds, float);
- ``URL <- EPOCH: JSON``: the client sent JSON;
- ``EPOCH: JSON``: the server sent JSON on the last opened connection;
- ``URL -> EPOCH: JSON``: an HTTP response body (``.http.`` files).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Direction = Literal["open", "sent", "received", "http"]
Exchange = Literal["coinbase", "binance", "kraken"]

_ARROWS: dict[str, Direction] = {"<->": "open", "<-": "sent", "->": "http"}


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One line: `received` is the epoch in seconds; `payload` is "" for an ``open``."""

    url: str | None
    received: float
    direction: Direction
    payload: str


class CaptureFormatError(ValueError):
    """A line that is not in the capture format."""


def parse_line(line: str, current_url: str | None) -> CaptureLine:
    """Parse one line; `current_url` is the connection that server messages belong to."""
    first = line[:1]
    if first.isdigit():
        epoch, sep, payload = line.partition(": ")
        if not sep:
            raise CaptureFormatError(f"no payload in {line[:80]!r}")
        return CaptureLine(current_url, float(epoch), "received", payload)
    url, _, rest = line.partition(" ")
    arrow, _, rest = rest.partition(" ")
    direction = _ARROWS.get(arrow)
    if direction is None:
        raise CaptureFormatError(f"unknown line {line[:80]!r}")
    if direction == "open":
        return CaptureLine(url, float(rest), direction, "")
    epoch, sep, payload = rest.partition(": ")
    if not sep:
        raise CaptureFormatError(f"no payload in {line[:80]!r}")
    return CaptureLine(url, float(epoch), direction, payload)


def read_capture(path: Path | str) -> Iterator[CaptureLine]:
    """The lines of a capture file, in order; blank lines are skipped."""
    current_url: str | None = None
    with Path(path).open(encoding="utf-8") as lines:
        for raw in lines:
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parsed = parse_line(line, current_url)
            if parsed.direction == "open":
                current_url = parsed.url
            yield parsed


def protocol_for_url(url: str) -> Exchange | None:
    """Which parser speaks the feed at `url`, by host; None when no adapter does.

    Coinbase Exchange: ``ws-feed.exchange.coinbase.com``, ``ws-feed.pro.coinbase.com`` (and
    the sandbox); Binance: ``stream.binance.com``, ``stream.binance.us``, ``*.binance.vision``
    and other ``binance.*`` stream hosts; Kraken v1: ``ws.kraken.com`` (not ``/v2``).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("ws-feed") and host.endswith("coinbase.com"):
        return "coinbase"
    labels = host.split(".")
    if "binance" in labels[:-1] or host.endswith(".binance.vision"):
        return "binance"
    if host in ("ws.kraken.com", "ws-auth.kraken.com", "beta-ws.kraken.com"):
        return None if parts.path.rstrip("/").endswith("/v2") else "kraken"
    return None
