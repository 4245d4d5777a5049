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
        self._venues: dict[str, dict[str, _VenueState]] = {}
        self._window_start: dict[str, int] = {}
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
        venues = self._venues.setdefault(pair, {})
        start = trade.time - trade.time % self.window_ms
        # Only a newer window resets the weights: a delayed trade from the previous window
        # must not flip the pair back and forth across the boundary.
        if start > self._window_start.get(pair, start):
            for state in venues.values():
                state.weight = 0.0
        self._window_start[pair] = max(start, self._window_start.get(pair, start))
        current = venues.get(venue)
        if current is None:
            venues[venue] = _VenueState(trade.price, trade.size, trade.time)
        else:
            if trade.time >= current.updated:  # a delayed trade is not the venue's price
                current.price = trade.price
                current.updated = trade.time
            current.weight += trade.size
        # Staleness is judged against the newest update of the pair, not this trade's time.
        price = self.price(pair, now=max(v.updated for v in venues.values()))
        if price is None:
            return None
        return Ticker(pair, None, None, price, None, None, None, trade.time, trade.received)

    def price(self, pair: str, now: int) -> float | None:
        venues = self._venues.get(pair)
        if not venues:
            return None
        fresh = [v for v in venues.values() if now - v.updated <= self.stale_ms]
        if not fresh:
            return None
        total = sum(v.weight for v in fresh)
        if total <= 0:
            return sum(v.price for v in fresh) / len(fresh)
        return sum(v.price * v.weight for v in fresh) / total

    def venues(self, pair: str) -> list[str]:
        return sorted(self._venues.get(pair, {}))
