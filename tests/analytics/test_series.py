"""Series buffers and the choice of one instrument per symbol."""

from __future__ import annotations

from cryptopulse.analytics._series import SeriesBuffer, choose_instruments
from cryptopulse.domain.models import Candle
from gcwalk import collector_visits

QUOTES = ["USD", "USDT", "USDC", "BTC", "ETH"]


def make_candle(open_time: int, close: float = 1.0, quote_volume: float = 1.0) -> Candle:
    return Candle("x", "5m", open_time, close, close, close, close, 1.0, quote_volume, 1, True)


def buffer(quote_volume: float = 1.0, n: int = 3) -> SeriesBuffer:
    b = SeriesBuffer(100)
    b.extend(make_candle(i, quote_volume=quote_volume) for i in range(n))
    return b


def test_buffer_keeps_order_ignores_repeats_and_stays_bounded() -> None:
    b = SeriesBuffer(100)
    assert b.add(make_candle(5)) and not b.add(make_candle(5)) and not b.add(make_candle(4))
    b.extend(make_candle(t) for t in range(6, 1_000))
    assert len(b) <= 100 + max(64, 100 // 8)
    snap = b.snapshot()
    assert list(snap.times) == list(range(900, 1_000)) and snap.closes[-1] == 1.0


def test_the_garbage_collector_does_not_walk_the_columns() -> None:
    """A server keeps up to 9,000 candles of each instrument here for months: the columns
    are C arrays, which a full collection does not walk, so its cost per buffer is the
    same at 3 candles and at 3,000."""
    short, long = buffer(n=3), SeriesBuffer(5_000)
    long.extend(make_candle(t, close=t + 0.5, quote_volume=t / 7) for t in range(3_000))
    assert len(long) == 3_000 and long.closes[-1] == 2_999.5 and long.liquidity() > 0
    assert collector_visits(long) == collector_visits(short)


def test_choice_prefers_quote_then_composite_then_liquidity() -> None:
    buffers = {
        "binance:BTC-USDT": buffer(1_000.0),
        "coinbase:BTC-USD": buffer(1.0),
        "kraken:BTC-USD": buffer(5.0),
        "binance:ETH-BTC": buffer(),
        "ETH-USD": buffer(1.0),
        "coinbase:ETH-USD": buffer(1_000.0),
        "binance:XMR-BTC": buffer(),
        "binance:XMR-ETH": buffer(),
        "binance:NEW-BTC": SeriesBuffer(100),  # no candles yet: not a candidate
    }
    assert choose_instruments(buffers, QUOTES) == {
        "BTC": "kraken:BTC-USD",  # USD first; the more liquid of the USD venues
        "ETH": "ETH-USD",  # the composite, whatever one venue trades
        "XMR": "binance:XMR-BTC",
    }
    assert choose_instruments(buffers, ["ETH"])["XMR"] == "binance:XMR-ETH"


def test_choice_prefers_an_instrument_with_enough_history() -> None:
    buffers = {"sim:ETH-USD": buffer(n=5), "binance:ETH-BTC": buffer(n=50)}
    assert choose_instruments(buffers, QUOTES) == {"ETH": "sim:ETH-USD"}
    assert choose_instruments(buffers, QUOTES, min_candles=20) == {"ETH": "binance:ETH-BTC"}
