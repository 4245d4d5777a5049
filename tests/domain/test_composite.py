"""Composite prices: volume-weighted across venues, stale venues left out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.domain.composite import CompositeBook
from cryptopulse.domain.models import Side, Trade

T0 = 1_700_000_100_000 - 1_700_000_100_000 % 300_000  # aligned to the 5-minute window


def make_trade(
    instrument: str = "coinbase:BTC-USD",
    price: float = 100.0,
    size: float = 1.0,
    time: int = T0,
    trade_id: str = "1",
    side: Side = "buy",
) -> Trade:
    return Trade(instrument, trade_id, price, size, side, time, time)


def test_single_venue_price_is_its_last_trade() -> None:
    book = CompositeBook()
    book.add_trade(make_trade(price=100))
    ticker = book.add_trade(make_trade(price=101, time=T0 + 1))
    assert ticker is not None
    assert (ticker.instrument, ticker.last, ticker.time) == ("BTC-USD", 101, T0 + 1)
    assert (ticker.bid, ticker.ask) == (None, None)


def test_price_is_weighted_by_venue_volume() -> None:
    book = CompositeBook()
    book.add_trade(make_trade("coinbase:BTC-USD", 100, 3, T0))
    ticker = book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 1))
    assert ticker is not None and ticker.last == pytest.approx((100 * 3 + 110 * 1) / 4)
    assert book.venues("BTC-USD") == ["coinbase", "kraken"]


def test_quotes_are_separate_pairs() -> None:
    book = CompositeBook()
    book.add_trade(make_trade("coinbase:BTC-USD", 100))
    ticker = book.add_trade(make_trade("binance:BTC-USDT", 200))
    assert ticker is not None and ticker.instrument == "BTC-USDT" and ticker.last == 200
    assert book.price("BTC-USD", now=T0) == 100


def test_stale_venue_is_left_out() -> None:
    book = CompositeBook(stale_ms=60_000)
    book.add_trade(make_trade("coinbase:BTC-USD", 100, 1, T0))
    ticker = book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 60_001))
    assert ticker is not None and ticker.last == 110
    # Exactly at the bound still counts.
    assert book.price("BTC-USD", now=T0 + 60_000) == pytest.approx(105)


def test_staleness_is_relative_to_the_newest_update_of_the_pair() -> None:
    book = CompositeBook(stale_ms=60_000)
    book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 90_000))
    # A delayed coinbase trade, 90 s older than kraken's: coinbase is stale for this pair.
    ticker = book.add_trade(make_trade("coinbase:BTC-USD", 100, 1, T0))
    assert ticker is not None and ticker.last == 110


def test_no_fresh_venue_means_no_price() -> None:
    book = CompositeBook(stale_ms=1_000)
    book.add_trade(make_trade(price=100))
    assert book.price("BTC-USD", now=T0 + 5_000) is None
    assert book.price("ETH-USD", now=T0) is None


def test_weights_reset_at_a_new_window() -> None:
    book = CompositeBook(window_ms=300_000)
    book.add_trade(make_trade("coinbase:BTC-USD", 100, 100, T0))
    book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 1))
    # A new window: only volume traded in it weighs.
    ticker = book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 300_000))
    assert ticker is not None and ticker.last == pytest.approx(110)


def test_an_older_trade_does_not_reopen_an_old_window() -> None:
    book = CompositeBook(window_ms=300_000)
    book.add_trade(make_trade("coinbase:BTC-USD", 100, 1, T0 + 300_000))
    book.add_trade(make_trade("kraken:BTC-USD", 110, 1, T0 + 299_999))  # previous window
    ticker = book.add_trade(make_trade("coinbase:BTC-USD", 100, 2, T0 + 300_001))
    # Kraken's weight survives: no reset back and forth across the boundary.
    assert ticker is not None and ticker.last == pytest.approx((100 * 3 + 110 * 1) / 4)


def test_an_older_trade_does_not_replace_a_venues_newer_price() -> None:
    book = CompositeBook()
    book.add_trade(make_trade(price=100, time=T0 + 10))
    ticker = book.add_trade(make_trade(price=90, time=T0 + 5))
    assert ticker is not None and ticker.last == 100


def test_zero_volume_venues_average_plainly() -> None:
    book = CompositeBook()
    book.add_trade(make_trade("coinbase:BTC-USD", 100, 0, T0))
    ticker = book.add_trade(make_trade("kraken:BTC-USD", 110, 0, T0))
    assert ticker is not None and ticker.last == pytest.approx(105)


venue_trades = st.lists(
    st.builds(
        make_trade,
        instrument=st.sampled_from(["coinbase:BTC-USD", "kraken:BTC-USD", "binance:BTC-USD"]),
        price=st.floats(min_value=1, max_value=1e6),
        # Real sizes are never subnormal; those would only test float underflow.
        size=st.just(0.0) | st.floats(min_value=1e-12, max_value=1e3),
        time=st.integers(min_value=T0, max_value=T0 + 900_000),
    ),
    min_size=1,
    max_size=40,
)


@given(venue_trades)
def test_composite_price_lies_between_the_venue_prices(trades: list[Trade]) -> None:
    book = CompositeBook(stale_ms=10**12)
    for trade in trades:
        ticker = book.add_trade(trade)
        assert ticker is not None and ticker.last is not None
        prices = [t.price for t in trades]
        assert min(prices) * (1 - 1e-12) <= ticker.last <= max(prices) * (1 + 1e-12)


def recomputed(trades: list[Trade], stale_ms: int, window_ms: int) -> float | None:
    """The composite price after `trades`, from scratch: each venue's price is its newest
    trade's (ties: the later arrival), its weight the volume it traded since the last trade
    that opened a newer window, and venues older than the newest trade by more than
    `stale_ms` are left out (summed in the order venues first traded)."""
    newest = max(t.time for t in trades)
    reset_at, window = 0, trades[0].time - trades[0].time % window_ms
    for n, t in enumerate(trades):
        if t.time - t.time % window_ms > window:
            reset_at, window = n, t.time - t.time % window_ms
    venues = list(dict.fromkeys(t.instrument for t in trades))
    fresh = []
    for venue in venues:
        own = [(n, t) for n, t in enumerate(trades) if t.instrument == venue]
        updated = max(t.time for _, t in own)
        price = [t.price for _, t in own if t.time == updated][-1]
        weight = 0.0
        for n, t in own:
            if n >= reset_at:
                weight += t.size
        if newest - updated <= stale_ms:
            fresh.append((price, weight))
    if not fresh:
        return None
    total = sum(w for _, w in fresh)
    if total <= 0:
        return sum(p for p, _ in fresh) / len(fresh)
    return sum(p * w for p, w in fresh) / total


@given(venue_trades, st.sampled_from([1, 60_000, 10**12]))
def test_composite_price_equals_a_recomputation_from_scratch(
    trades: list[Trade], stale_ms: int
) -> None:
    book = CompositeBook(stale_ms=stale_ms, window_ms=300_000)
    for n, trade in enumerate(trades, 1):
        ticker = book.add_trade(trade)
        assert ticker is not None  # the trade's own venue is always fresh
        assert ticker.last == recomputed(trades[:n], stale_ms, 300_000)
