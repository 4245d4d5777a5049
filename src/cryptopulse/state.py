"""The latest market state held in memory for serving: tickers, sources, feed health."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Ticker
from cryptopulse.sources.base import FeedStatus


@dataclass(slots=True)
class MarketState:
    tickers: dict[str, Ticker] = field(default_factory=dict)
    # instrument -> "live" | "simulated" | "replay" | "import"
    sources: dict[str, str] = field(default_factory=dict)
    # composite pair -> venue instruments seen for it
    composites: dict[str, set[str]] = field(default_factory=dict)
    feeds: dict[str, FeedStatus] = field(default_factory=dict)

    def note_instrument(self, instrument: str, source: str) -> None:
        if self.sources.get(instrument) != source:
            self.sources[instrument] = source
        pair = parse_instrument(instrument).pair
        self.composites.setdefault(pair, set()).add(instrument)

    def source_of(self, instrument: str) -> str | None:
        """Source kind of a venue instrument, or of the venues that have data for a composite
        (joined with "+" if mixed): a configured feed that never delivered does not count."""
        if instrument in self.sources:
            return self.sources[instrument]
        venues = self.composites.get(instrument)
        if not venues:
            return None
        active = [v for v in venues if v in self.tickers] or list(venues)
        kinds = sorted({self.sources[v] for v in active if v in self.sources})
        return "+".join(kinds) if kinds else None

    @property
    def mode(self) -> str:
        """`live` when any live feed is connected, else the kind of whatever feeds we have."""
        if any(f.kind == "live" and f.connected for f in self.feeds.values()):
            return "live"
        if any(f.kind == "simulated" for f in self.feeds.values()):
            return "simulated"
        kinds = sorted({f.kind for f in self.feeds.values()})
        return "+".join(kinds) if kinds else "none"
