"""Composite instruments: one price for BASE-QUOTE across the venues that quote it."""

from __future__ import annotations

from dataclasses import dataclass

from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Ticker, Trade

_MAX_PARSED = 10_000


@dataclass(slots=True)
class _VenueState:
    price: float
    weight: float  # traded base volume used as the weight
    updated: int  # exchange time, ms


@dataclass(slots=True)
class _Pair:
    venues: dict[str, _VenueState]
    window_start: int
    newest: int  # the newest update of any venue (exchange time, ms)


class CompositeBook:
    """Volume-weighted price of a pair across venues, ignoring venues stale beyond `stale_ms`.

    Each venue contributes its last trade price weighted by the base volume it traded
    in the trailing `window_ms` (decayed: a venue's weight is its volume since its
    weight was last reset at the window boundary). A venue whose last update is older
    than `stale_ms` relative to the newest update of the pair is left out.
    """

    def __init__(self, stale_ms: int = 60_000, window_ms: int = 300_000) -> None:
        self.stale_ms = stale_ms
        self.window_ms = window_ms
        self._pairs: dict[str, _Pair] = {}
        # instrument → (pair, venue): parsing is a regex, and a feed names few instruments.
        self._parsed: dict[str, tuple[str, str]] = {}

    def add_trade(self, trade: Trade) -> Ticker | None:
        """Account one venue trade; return the pair's new composite ticker."""
        parsed = self._parsed.get(trade.instrument)
        if parsed is None:
            if len(self._parsed) >= _MAX_PARSED:
                self._parsed.clear()
            inst = parse_instrument(trade.instrument)
            parsed = self._parsed[trade.instrument] = (inst.pair, inst.exchange or "")
        pair, venue = parsed
        time = trade.time
        start = time - time % self.window_ms
        book = self._pairs.get(pair)
        if book is None:
            book = self._pairs[pair] = _Pair({}, start, time)
        elif start > book.window_start:
            # Only a newer window resets the weights: a delayed trade from the previous
            # window must not flip the pair back and forth across the boundary.
            for state in book.venues.values():
                state.weight = 0.0
            book.window_start = start
        current = book.venues.get(venue)
        if current is None:
            book.venues[venue] = _VenueState(trade.price, trade.size, time)
        else:
            if time >= current.updated:  # a delayed trade is not the venue's price
                current.price = trade.price
                current.updated = time
            current.weight += trade.size
        # Staleness is judged against the newest update of the pair, not this trade's time.
        if time > book.newest:
            book.newest = time
        price = self._price(book.venues, book.newest)
        if price is None:
            return None
        return Ticker(pair, None, None, price, None, None, None, time, trade.received)

    def _price(self, venues: dict[str, _VenueState], now: int) -> float | None:
        # One pass, summing in the order `sum` over the fresh venues would.
        count = 0
        total = weighted = plain = 0.0
        for v in venues.values():
            if now - v.updated <= self.stale_ms:
                count += 1
                total += v.weight
                weighted += v.price * v.weight
                plain += v.price
        if not count:
            return None
        if total <= 0:
            return plain / count
        return weighted / total

    def price(self, pair: str, now: int) -> float | None:
        book = self._pairs.get(pair)
        return None if book is None else self._price(book.venues, now)

    def venues(self, pair: str) -> list[str]:
        book = self._pairs.get(pair)
        return [] if book is None else sorted(book.venues)
