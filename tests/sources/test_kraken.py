"""Kraken v1: the parser on captured bytes, and the live source against a fake."""

from __future__ import annotations

import json

from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources import kraken
from cryptopulse.sources.kraken import KrakenParser, KrakenSource
from fakes import CAPTURES, FakeKraken, RecordingSink, fast_options, running, server_frames

CAPTURE = "KRAKEN.ws.48.0"
INSTRUMENTS = ["kraken:XMR-USD", "kraken:SC-EUR"]


def captured() -> list[bytes]:
    return [
        line.partition(b": ")[2]
        for line in (CAPTURES / CAPTURE).read_bytes().splitlines()
        if line[:1].isdigit()
    ]


def data_frames() -> list[str]:
    """Trade arrays and heartbeats (status events are the fake's own to send)."""
    return [f for f in server_frames(CAPTURE) if f.startswith("[") or "heartbeat" in f]


def entries(frames: list[str]) -> list[list[str]]:
    return [e for f in frames if f.startswith("[") for e in json.loads(f)[1]]


def test_parse_trade_array_on_captured_bytes() -> None:
    raw = next(r for r in captured() if r.startswith(b"[993") and b"],[" in r)
    assert kraken.parse_message(raw, 3) == [
        Trade(
            "kraken:XMR-USD",
            "1618678150.826417-s-354.04000000-0.28245396",
            354.04,
            0.28245396,
            "sell",
            1618678150826,
            3,
        ),
        Trade(
            "kraken:XMR-USD",
            "1618678150.827816-s-353.81000000-1.71754604",
            353.81,
            1.71754604,
            "sell",
            1618678150827,
            3,
        ),
    ]


def test_events_give_nothing_and_map_channels() -> None:
    parser = KrakenParser()
    events = [parser.parse(raw, 1) for raw in captured() if raw.startswith(b"{")]
    assert events and all(e == [] for e in events)
    assert parser.channels[993] == "XMR/USD" and parser.channels[465] == "XBT/CHF"
    # A frame without the trailing pair still resolves through the channel map.
    [trade] = parser.parse(b'[465,[["50000.1","0.5","1618678150.5","b","l",""]],"trade"]', 2)
    assert isinstance(trade, Trade)
    assert trade.instrument == "kraken:BTC-CHF" and trade.side == "buy"


def test_identical_entries_in_one_message_get_distinct_ids() -> None:
    entry = ["1.0", "2.0", "1618678150.5", "b", "m", ""]
    trades = kraken.parse_trades([entry, entry], "XBT/USD", 1)
    assert [t.trade_id for t in trades] == [
        "1618678150.5-b-1.0-2.0",
        "1618678150.5-b-1.0-2.0-1",
    ]
    assert trades[0].instrument == "kraken:BTC-USD"


def test_parse_ticker() -> None:
    payload = {
        "a": ["5525.40000", 1, "1.000"],
        "b": ["5525.10000", 1, "2.000"],
        "c": ["5525.10000", "0.00398963"],
        "v": ["2634.11501494", "3591.17907851"],
    }
    raw = json.dumps([340, payload, "ticker", "XBT/USD"])
    assert kraken.parse_message(raw, 8) == [
        Ticker("kraken:BTC-USD", 5525.1, 5525.4, 5525.1, 2.0, 1.0, 3591.17907851, 8, 8)
    ]


def test_pair_names() -> None:
    assert kraken.pair_of("kraken:BTC-USD") == "XBT/USD"
    assert kraken.pair_of("kraken:DOGE-USD") == "XDG/USD"
    assert kraken.instrument_of("XBT/EUR") == "kraken:BTC-EUR"
    messages = [json.loads(m) for m in kraken.subscribe_messages(["XBT/USD"] * 51)]
    assert [(m["subscription"]["name"], len(m["pair"])) for m in messages] == [
        ("trade", 50),
        ("trade", 1),
        ("ticker", 50),
        ("ticker", 1),
    ]


async def test_live_source_streams_the_capture_and_answers_heartbeats() -> None:
    frames = data_frames()
    async with FakeKraken(frames) as fake:
        source = KrakenSource(
            INSTRUMENTS, ws_url=fake.ws_url, options=fast_options(keepalive_interval_s=0.05)
        )
        sink = RecordingSink()
        async with running(source, sink):
            await sink.wait_until(lambda: len(sink.trades) == len(entries(frames)))
            await sink.wait_until(
                lambda: any(m.get("event") == "ping" for m in fake.client_messages)
            )
    subscribes = [m for m in fake.client_messages if m.get("event") == "subscribe"]
    assert {m["subscription"]["name"] for m in subscribes} == {"trade", "ticker"}
    assert subscribes[0]["pair"] == ["XMR/USD", "SC/EUR"]
    assert [(t.price, t.size) for t in sink.trades] == [
        (float(e[0]), float(e[1])) for e in entries(frames)
    ]
    assert source.status.connected is False and source.status.gaps == 0


async def test_reconnects_after_a_disconnect() -> None:
    frames = data_frames()
    first_trade = next(i for i, f in enumerate(frames) if f.startswith("["))
    async with FakeKraken(frames) as fake:
        fake.disconnect(first_trade + 1)
        source = KrakenSource(INSTRUMENTS, ws_url=fake.ws_url, options=fast_options())
        sink = RecordingSink()
        async with running(source, sink):
            await sink.wait_until(lambda: len(sink.trades) == len(entries(frames)))
    assert fake.connections == 2 and source.status.reconnects >= 1
    subscribes = [m for m in fake.client_messages if m.get("event") == "subscribe"]
    assert len(subscribes) == 4  # trade and ticker, on each connection
