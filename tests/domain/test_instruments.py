"""Instrument names and interval arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.domain.instruments import (
    INTERVALS,
    Instrument,
    InvalidInstrument,
    bucket_start,
    interval_ms,
    normalize_asset,
    parse_instrument,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coinbase:BTC-USD", Instrument("coinbase", "BTC", "USD")),
        ("binance:BTC-USDT", Instrument("binance", "BTC", "USDT")),
        ("Coinbase:btc-usd", Instrument("coinbase", "BTC", "USD")),
        ("kraken:XBT-USD", Instrument("kraken", "BTC", "USD")),
        ("kraken:XDG-EUR", Instrument("kraken", "DOGE", "EUR")),
        ("BTC-USD", Instrument(None, "BTC", "USD")),
        ("sim:1INCH-USD", Instrument("sim", "1INCH", "USD")),
        ("gate_io:ETH-BTC", Instrument("gate_io", "ETH", "BTC")),
    ],
)
def test_parse_instrument(text: str, expected: Instrument) -> None:
    assert parse_instrument(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "BTC",
        "BTCUSD",
        "BTC-",
        "-USD",
        "BTC-USD-X",
        ":BTC-USD",
        "coin base:BTC-USD",
        "a:b:BTC-USD",
        "coinbase:BTC/USD",
        " BTC-USD",
        "coinbase:" + "A" * 21 + "-USD",
        "x" * 33 + ":BTC-USD",
    ],
)
def test_parse_instrument_rejects(text: str) -> None:
    with pytest.raises(InvalidInstrument):
        parse_instrument(text)


def test_invalid_instrument_is_a_value_error() -> None:
    assert issubclass(InvalidInstrument, ValueError)


@pytest.mark.parametrize(
    ("instrument", "pair", "composite", "text"),
    [
        (Instrument("coinbase", "BTC", "USD"), "BTC-USD", False, "coinbase:BTC-USD"),
        (Instrument(None, "ETH", "USDT"), "ETH-USDT", True, "ETH-USDT"),
    ],
)
def test_instrument_properties(
    instrument: Instrument, pair: str, composite: bool, text: str
) -> None:
    assert instrument.pair == pair
    assert instrument.is_composite is composite
    assert str(instrument) == text


@pytest.mark.parametrize(("asset", "expected"), [("xbt", "BTC"), ("XDG", "DOGE"), ("eth", "ETH")])
def test_normalize_asset(asset: str, expected: str) -> None:
    assert normalize_asset(asset) == expected


@pytest.mark.parametrize(
    ("interval", "length"),
    [("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000), ("1d", 86_400_000)],
)
def test_interval_ms(interval: str, length: int) -> None:
    assert interval_ms(interval) == length


def test_unknown_interval_names_itself() -> None:
    with pytest.raises(KeyError, match="7m"):
        interval_ms("7m")


@pytest.mark.parametrize(
    ("time", "interval", "start"),
    [
        (0, "1m", 0),
        (59_999, "1m", 0),
        (60_000, "1m", 60_000),
        (1_700_000_123_456, "1h", 1_699_999_200_000),
        (1_700_000_123_456, "1d", 1_699_920_000_000),  # 2023-11-14 00:00 UTC
    ],
)
def test_bucket_start_table(time: int, interval: str, start: int) -> None:
    assert bucket_start(time, interval) == start


@given(st.integers(min_value=0, max_value=2**53), st.sampled_from(sorted(INTERVALS)))
def test_bucket_start_is_aligned_and_contains_time(time: int, interval: str) -> None:
    start = bucket_start(time, interval)
    assert start % INTERVALS[interval] == 0
    assert start <= time < start + INTERVALS[interval]


@given(
    st.sampled_from(["coinbase", "binance", "kraken", "sim"]),
    st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
    st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
)
def test_parse_round_trips(exchange: str, base: str, quote: str) -> None:
    inst = parse_instrument(f"{exchange}:{base}-{quote}")
    assert parse_instrument(str(inst)) == inst
    assert inst.base == normalize_asset(base) and inst.quote == normalize_asset(quote)


def test_intervals_grow_and_nest() -> None:
    lengths = list(INTERVALS.values())
    assert lengths == sorted(lengths)
    assert all(b % a == 0 for a, b in zip(lengths, lengths[1:], strict=False))
