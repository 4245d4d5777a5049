"""The capture reader and the URL → protocol choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptopulse.sources.capture import (
    CaptureFormatError,
    CaptureLine,
    parse_line,
    protocol_for_url,
    read_capture,
)
from fakes import CAPTURES


def test_reads_open_sent_and_received_lines() -> None:
    lines = list(read_capture(CAPTURES / "KRAKEN.ws.48.0"))
    assert lines[0] == CaptureLine("wss://ws.kraken.com", 1618678132.368463, "open", "")
    assert lines[1].direction == "sent" and lines[1].payload.startswith('{"event":"subscribe"')
    assert lines[2].direction == "received" and lines[2].url == "wss://ws.kraken.com"
    assert lines[2].received == 1618678132.831468
    assert lines[2].payload.startswith('{"connectionID"')
    text = (CAPTURES / "KRAKEN.ws.48.0").read_text().splitlines()
    assert len(lines) == len([t for t in text if t.strip()])


def test_reads_http_lines() -> None:
    first = next(read_capture(CAPTURES / "BINANCE.http.0.0"))
    assert first.direction == "http"
    assert first.url == "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000"
    assert first.payload.startswith('{"lastUpdateId"')


def test_bad_lines_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError):
        parse_line("wss://x ?? 12", None)
    with pytest.raises(CaptureFormatError):
        parse_line("123.5 no payload", None)


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("wss://ws-feed.pro.coinbase.com", "coinbase"),
        ("wss://ws-feed.exchange.coinbase.com", "coinbase"),
        ("wss://stream.binance.com:9443/stream?streams=nknusdt@aggTrade", "binance"),
        ("wss://stream.binance.us:9443/ws", "binance"),
        ("wss://data-stream.binance.vision/stream", "binance"),
        ("wss://ws.kraken.com", "kraken"),
        ("wss://ws.kraken.com/v2", None),
        ("wss://advanced-trade-ws.coinbase.com", None),
        ("wss://example.com/binance", None),
    ],
)
def test_protocol_for_url(url: str, protocol: str | None) -> None:
    assert protocol_for_url(url) == protocol
