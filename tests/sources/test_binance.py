"""Binance spot: the parser on captured bytes, and the live source against a fake."""

from __future__ import annotations

import json

import pytest

from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources import binance
from cryptopulse.sources.binance import BinanceSource
from fakes import CAPTURES, FakeBinance, RecordingSink, fast_options, running, server_frames

CAPTURE = "BINANCE.ws.1.0"
INSTRUMENT = "binance:NKN-USDT"


def capture_line(stream: str) -> bytes:
    for line in (CAPTURES / CAPTURE).read_bytes().splitlines():
        if line[:1].isdigit() and f'"stream":"{stream}"'.encode() in line:
            return line.partition(b": ")[2]
    raise LookupError(stream)


def test_parse_agg_trade_on_captured_bytes() -> None:
    [trade] = binance.parse_message(capture_line("nknusdt@aggTrade"), 9)
    assert trade == Trade("binance:NKN-USDT", "15683430", 0.3528, 58.0, "buy", 1633998523963, 9)


def test_parse_agg_trade_buyer_maker_is_a_taker_sell() -> None:
    raw = capture_line("lrcbtc@aggTrade")
    data = json.loads(raw)["data"]
    [trade] = binance.parse_message(raw, 1)
    assert isinstance(trade, Trade)
    assert trade.instrument == "binance:LRC-BTC"
    assert trade.side == ("sell" if data["m"] else "buy")
    assert (trade.price, trade.size, trade.time) == (float(data["p"]), float(data["q"]), data["T"])


def test_parse_book_ticker_on_captured_bytes() -> None:
    [ticker] = binance.parse_message(capture_line("nknusdt@bookTicker"), 42)
    assert ticker == Ticker("binance:NKN-USDT", 0.3521, 0.3526, None, 672.0, 3199.0, None, 42, 42)


def test_parse_24hr_ticker_and_trade_events() -> None:
    ticker = {"e": "24hrTicker", "E": 5, "s": "BNBBTC", "c": "0.0025", "b": "0.0024"}
    ticker |= {"B": "10", "a": "0.0026", "A": "100", "v": "10000"}
    trade = {"e": "trade", "E": 1, "s": "BNBBTC", "t": 12345, "p": "0.001", "q": "100"}
    trade |= {"T": 123456785, "m": True, "M": True}
    assert binance.parse_message(json.dumps(ticker), 6) == [
        Ticker("binance:BNB-BTC", 0.0024, 0.0026, 0.0025, 10.0, 100.0, 10000.0, 5, 6)
    ]
    assert binance.parse_message(json.dumps(trade), 2) == [
        Trade("binance:BNB-BTC", "12345", 0.001, 100.0, "sell", 123456785, 2)
    ]


@pytest.mark.parametrize("stream", ["nknusdt@depth@100ms", "nknusdt@kline_1m"])
def test_other_streams_give_nothing(stream: str) -> None:
    assert binance.parse_message(capture_line(stream), 1) == []


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("NKNUSDT", ("NKN", "USDT")),
        ("BLZETH", ("BLZ", "ETH")),
        ("RUNEEUR", ("RUNE", "EUR")),
        ("TUSDUSDT", ("TUSD", "USDT")),
        ("BTCFDUSD", ("BTC", "FDUSD")),
        ("BTCUSD", ("BTC", "USD")),
    ],
)
def test_split_symbol(symbol: str, pair: tuple[str, str]) -> None:
    assert binance.split_symbol(symbol) == pair


def test_known_symbols_win_over_suffix_split() -> None:
    raw = capture_line("nknusdt@aggTrade")
    [trade] = binance.parse_message(raw, 1, {"NKNUSDT": "binance:NKN-USDT"})
    assert trade.instrument == "binance:NKN-USDT"


def test_connections_respect_the_stream_limit() -> None:
    instruments = [f"binance:C{i}-USDT" for i in range(1100)]
    source = BinanceSource(instruments, ws_url="ws://127.0.0.1:9")
    groups = source.connection_groups()
    assert [len(g) for g in groups] == [512, 512, 76]
    messages = binance.subscribe_messages([f"s{i}@aggTrade" for i in range(450)])
    assert [len(json.loads(m)["params"]) for m in messages] == [200, 200, 50]


def agg_trade_frames(count: int) -> list[str]:
    """`count` consecutive aggTrades of NKNUSDT built on the captured one, each followed by
    a captured bookTicker frame."""
    template = json.loads(capture_line("nknusdt@aggTrade"))
    tickers = [f for f in server_frames(CAPTURE) if '"stream":"nknusdt@bookTicker"' in f]
    frames = []
    for i in range(count):
        data = template["data"] | {"a": template["data"]["a"] + i, "T": template["data"]["T"] + i}
        data |= {"m": i % 3 == 0, "p": f"{0.35 + i / 10_000:.8f}"}
        frames.append(json.dumps({"stream": template["stream"], "data": data}))
        frames.append(tickers[i % len(tickers)])
    return frames


def expected_ids(frames: list[str]) -> list[str]:
    return [str(m["data"]["a"]) for m in map(json.loads, frames) if "aggTrade" in m["stream"]]


async def stream_all(fake: FakeBinance) -> BinanceSource:
    source = BinanceSource(
        [INSTRUMENT], ws_url=fake.ws_url, rest_url=fake.rest_url, options=fast_options()
    )
    sink = RecordingSink()
    expected = expected_ids(fake.frames)
    async with running(source, sink):
        await sink.wait_until(lambda: len(sink.trades) >= len(expected))
        await sink.wait_until(lambda: fake.cursor == len(fake.frames))
    assert sink.trade_ids() == expected
    assert len(sink.tickers) > 0
    return source


async def test_live_source_subscribes_and_streams() -> None:
    async with FakeBinance(agg_trade_frames(40)) as fake:
        source = await stream_all(fake)
    assert fake.client_messages[0] == {
        "method": "SUBSCRIBE",
        "params": ["nknusdt@aggTrade", "nknusdt@bookTicker"],
        "id": 1,
    }
    assert source.status.gaps == 0 and source.status.backfilled == 0


async def test_disconnect_then_reconnect_backfills_from_last_id() -> None:
    async with FakeBinance(agg_trade_frames(40)) as fake:
        fake.disconnect(30, missed=10)  # 5 trades go by while the client is away
        source = await stream_all(fake)
    assert fake.connections == 2 and source.status.reconnects >= 1
    assert source.status.backfilled >= 5
    assert source.status.extra.get("duplicates", 0) == source.status.backfilled - 5


async def test_dropped_trade_is_a_gap_and_is_backfilled() -> None:
    async with FakeBinance(agg_trade_frames(40)) as fake:
        fake.drop(20)
        fake.drop(30)
        source = await stream_all(fake)
    assert source.status.gaps == 2 and source.status.backfilled == 2


async def test_duplicates_are_not_double_counted() -> None:
    async with FakeBinance(agg_trade_frames(20)) as fake:
        fake.duplicate(4)
        fake.duplicate(10)
        source = await stream_all(fake)
    assert source.status.extra["duplicates"] == 2 and source.status.gaps == 0


async def test_gap_without_rest_is_counted_not_filled() -> None:
    async with FakeBinance(agg_trade_frames(10)) as fake:
        fake.drop(4)
        source = BinanceSource([INSTRUMENT], ws_url=fake.ws_url, options=fast_options())
        sink = RecordingSink()
        async with running(source, sink):
            await sink.wait_until(lambda: len(sink.trades) == 9)
    assert source.status.gaps == 1 and source.status.backfilled == 0
