"""The market records: immutable, untracked by the collector, and their JSON on the bus."""

from __future__ import annotations

import gc
import math

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.domain.models import Candle, Ticker, Trade
from cryptopulse.pipeline import record_json

maybe = st.none() | st.floats()
text = st.text(max_size=12)
records = (
    st.builds(Trade, text, text, st.floats(), st.floats(), st.sampled_from(["buy", "sell"]),
              st.integers(0, 2**53), st.integers(0, 2**53))
    | st.builds(Ticker, text, maybe, maybe, maybe, maybe, maybe, maybe,
                st.integers(0, 2**53), st.integers(0, 2**53))
    | st.builds(Candle, text, text, st.integers(0, 2**53), st.floats(), st.floats(), st.floats(),
                st.floats(), st.floats(), st.floats(), st.integers(0, 10**9), st.booleans())
)  # fmt: skip


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


@given(records)
def test_the_bus_json_is_each_field_by_name_in_order(record: Trade | Ticker | Candle) -> None:
    """What subscribers get: an object of the record's fields in declaration order, each
    value as orjson writes it (non-finite floats as null, as before the records became
    Structs); only the spelling of large exponents may differ (`1e16`, not `1e+16`)."""
    fields = msgspec.structs.asdict(record)
    decoded = orjson.loads(record_json(record))
    assert list(decoded) == list(record.__struct_fields__)
    expected = orjson.loads(orjson.dumps(fields))
    assert all(_same(decoded[k], expected[k]) for k in fields), (decoded, expected)


def test_records_are_frozen_hashable_and_untracked() -> None:
    trade = Trade("coinbase:BTC-USD", "1", 100.0, 0.5, "buy", 1, 2)
    with pytest.raises(AttributeError):
        trade.price = 1.0  # type: ignore[misc]
    assert hash(trade) == hash(Trade("coinbase:BTC-USD", "1", 100.0, 0.5, "buy", 1, 2))
    changed = msgspec.structs.replace(trade, price=101.0)
    assert (changed.price, trade.price) == (101.0, 100.0)
    # Strings and numbers only: the collector never needs to visit them.
    assert not gc.is_tracked(trade)
    candle = Candle("coinbase:BTC-USD", "1m", 0, 1.0, 2.0, 0.5, 1.5, 3.0, 4.5, 2, False)
    ticker = Ticker("coinbase:BTC-USD", None, None, 1.0, None, None, None, 1, 2)
    assert not gc.is_tracked(candle) and not gc.is_tracked(ticker)
