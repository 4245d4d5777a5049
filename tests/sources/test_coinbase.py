"""Coinbase Exchange: the parser on captured bytes, and the live source against a fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.sources import coinbase
from cryptopulse.sources.coinbase import CoinbaseSource
from fakes import CAPTURES, FakeCoinbase, RecordingSink, fast_options, running, server_frames

CAPTURE = "COINBASE.ws.28.0"
PRODUCT = "SKL-USD"
INSTRUMENT = "coinbase:SKL-USD"


def capture_line(kind: str, product: str | None = None) -> bytes:
    for line in (CAPTURES / CAPTURE).read_bytes().splitlines():
        if line[:1].isdigit():
            payload = line.partition(b": ")[2]
            msg = json.loads(payload)
            if msg.get("type") == kind and product in (None, msg.get("product_id")):
                return payload
    raise LookupError(kind)


def product_frames(product: str = PRODUCT) -> list[str]:
    """The match, last_match and ticker frames of one product, in capture order."""
    return [
        f
        for f in server_frames(CAPTURE)
        if json.loads(f).get("type") in ("match", "last_match", "ticker")
        and json.loads(f).get("product_id") == product
    ]


def trade_ids_in(frames: list[str]) -> list[str]:
    return [
        str(m["trade_id"]) for m in map(json.loads, frames) if m["type"] in ("match", "last_match")
    ]


def test_parse_match_on_captured_bytes() -> None:
    raw = capture_line("match", "SKL-USD")
    assert coinbase.parse_message(raw, 1) == [
        Trade("coinbase:SKL-USD", "1568268", 0.791, 450.0, "buy", 1618677817121, 1)
    ]


def test_parse_last_match_and_maker_side_flip() -> None:
    raw = capture_line("last_match", "BAND-GBP")
    [trade] = coinbase.parse_message(raw, 5)
    # The feed says side "sell": the maker sold, so the taker bought.
    assert trade == Trade("coinbase:BAND-GBP", "881613", 14.7775, 0.04, "buy", 1618677810244, 5)


def test_parse_ticker_on_captured_bytes() -> None:
    raw = capture_line("ticker", "BAND-GBP")
    [ticker] = coinbase.parse_message(raw, 7)
    assert ticker == Ticker(
        "coinbase:BAND-GBP", 14.755, 14.806, 14.7775, None, None, 94381.28, 1618677810244, 7
    )


@pytest.mark.parametrize("kind", ["l2update", "snapshot", "subscriptions"])
def test_other_messages_give_nothing(kind: str) -> None:
    assert coinbase.parse_message(capture_line(kind), 1) == []


def test_iso_ms_truncates_to_ms() -> None:
    assert coinbase.iso_ms("2021-04-17T16:43:37.089723Z") == 1618677817089
    assert coinbase.iso_ms("2021-04-17T16:43:37Z") == 1618677817000


@given(st.integers(min_value=946_684_800_000_000, max_value=4_102_444_800_000_000))
def test_iso_ms_equals_datetime_arithmetic(micros: int) -> None:
    """Twice each (the second from the cache of converted seconds), with 6 and 0 digits."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    expected = micros // 1000
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert coinbase.iso_ms(text) == coinbase.iso_ms(text) == expected
    whole = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert coinbase.iso_ms(whole) == expected - moment.microsecond // 1000


def test_subscribe_messages_are_chunked() -> None:
    products = [f"P{i}-USD" for i in range(coinbase.PRODUCTS_PER_SUBSCRIBE + 1)]
    messages = [json.loads(m) for m in coinbase.subscribe_messages(products)]
    assert [len(m["product_ids"]) for m in messages] == [coinbase.PRODUCTS_PER_SUBSCRIBE, 1]
    assert messages[0]["channels"] == ["matches", "ticker", "heartbeat"]


def make_source(fake: FakeCoinbase) -> CoinbaseSource:
    return CoinbaseSource(
        [INSTRUMENT], ws_url=fake.ws_url, rest_url=fake.rest_url, options=fast_options()
    )


async def stream_all(fake: FakeCoinbase) -> tuple[CoinbaseSource, RecordingSink]:
    source, sink = make_source(fake), RecordingSink()
    expected = trade_ids_in(fake.frames)
    async with running(source, sink):
        await sink.wait_until(lambda: len(sink.trades) >= len(expected))
        await sink.wait_until(lambda: fake.cursor == len(fake.frames))
    assert sink.trade_ids() == expected
    return source, sink


async def test_live_source_streams_the_capture() -> None:
    frames = product_frames()
    async with FakeCoinbase(frames) as fake:
        source, sink = await stream_all(fake)
    subscribe = fake.client_messages[0]
    assert subscribe["type"] == "subscribe" and subscribe["product_ids"] == [PRODUCT]
    assert len(sink.trades) == 53 and len(sink.tickers) > 0
    assert source.status.gaps == 0 and source.status.backfilled == 0
    assert source.status.messages >= len(frames) and source.status.last_message is not None


async def test_disconnect_then_reconnect_backfills_missed_trades() -> None:
    frames = [f for f in product_frames() if json.loads(f)["type"] != "ticker"]
    async with FakeCoinbase(frames) as fake:
        fake.disconnect(20, missed=6)
        source, _ = await stream_all(fake)
    assert fake.connections == 2
    assert source.status.reconnects >= 1
    # The catch-up after reconnecting may also fetch trades already on their way over the
    # new socket; those arrive later as repeats and are skipped.
    assert source.status.backfilled >= 6
    assert source.status.extra.get("duplicates", 0) == source.status.backfilled - 6
    assert fake.rest_requests


async def test_dropped_message_is_a_gap_and_is_backfilled() -> None:
    frames = [f for f in product_frames() if json.loads(f)["type"] != "ticker"]
    async with FakeCoinbase(frames) as fake:
        fake.drop(10)
        fake.drop(30)
        source, _ = await stream_all(fake)
    assert source.status.gaps == 2 and source.status.backfilled == 2


async def test_duplicates_and_reordering_are_not_double_counted() -> None:
    frames = [f for f in product_frames() if json.loads(f)["type"] != "ticker"]
    async with FakeCoinbase(frames) as fake:
        fake.duplicate(5)
        fake.swap(12)
        source, _ = await stream_all(fake)
    assert source.status.extra["duplicates"] == 2  # the repeat, and the late half of the swap
    assert source.status.gaps == 1


async def test_silence_means_reconnect() -> None:
    async with FakeCoinbase([], idle_s=0.05) as fake:
        source, sink = make_source(fake), RecordingSink()
        source.options.silence_timeout_s = 0.2
        async with running(source, sink):
            await sink.wait_until(lambda: source.status.reconnects >= 2)
    assert "SilenceTimeout" in (source.status.last_error or "")


async def test_unreachable_exchange_never_raises() -> None:
    source = CoinbaseSource([INSTRUMENT], ws_url="ws://127.0.0.1:9", options=fast_options())
    sink = RecordingSink()
    async with running(source, sink):
        await sink.wait_until(lambda: source.status.reconnects >= 3)
    assert not source.status.connected and source.status.last_error
