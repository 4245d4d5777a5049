"""The candle page body, encoded from Structs, is the documented `CandlePage`."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.api.routers.market import candle_page_bytes
from cryptopulse.api.schemas import CandleOut, CandlePage
from cryptopulse.domain.models import Candle

prices = st.floats(min_value=1e-12, max_value=1e15, allow_nan=False, allow_infinity=False)
candles = st.builds(
    Candle,
    st.just("binance:ETH-BTC"),
    st.just("5m"),
    st.integers(min_value=0, max_value=2**53),
    prices,
    prices,
    prices,
    prices,
    prices,
    prices,
    st.integers(min_value=0, max_value=10**9),
    st.booleans(),
)


@given(
    st.lists(candles, max_size=20),
    st.sampled_from(["replay", None]),
    st.sampled_from([None, "ZDoxNzAw"]),
)
def test_candle_page_bytes_are_a_candle_page(
    rows: list[Candle], source: str | None, cursor: str | None
) -> None:
    body = candle_page_bytes("binance:ETH-BTC", "5m", source, rows, cursor)
    page = CandlePage.model_validate_json(body)
    # Every field of the model, in its order, and nothing else.
    assert list(orjson.loads(body)) == list(CandlePage.model_fields)
    assert [list(row) for row in orjson.loads(body)["data"]] == [
        list(CandleOut.model_fields) for _ in rows
    ]
    assert (page.instrument, page.interval, page.source, page.next_cursor) == (
        "binance:ETH-BTC",
        "5m",
        source,
        cursor,
    )
    assert [
        (c.open_time, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades, c.closed)
        for c in page.data
    ] == [
        (c.open_time, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades, c.closed)
        for c in rows
    ]
