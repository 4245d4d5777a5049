"""Instrument names and candle intervals.

Venue instrument: ``exchange:BASE-QUOTE`` (``coinbase:BTC-USD``); composite: ``BASE-QUOTE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

# Venues spell some assets their own way; we use the common ticker.
ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

_PAIR = re.compile(r"^([A-Z0-9]{1,20})-([A-Z0-9]{1,20})$")
_EXCHANGE = re.compile(r"^[a-z0-9_]{1,32}$")


class InvalidInstrument(ValueError):
    """The text is not an instrument name."""


@dataclass(frozen=True, slots=True)
class Instrument:
    exchange: str | None
    base: str
    quote: str

    @property
    def pair(self) -> str:
        return f"{self.base}-{self.quote}"

    @property
    def is_composite(self) -> bool:
        return self.exchange is None

    def __str__(self) -> str:
        return self.pair if self.exchange is None else f"{self.exchange}:{self.pair}"


def normalize_asset(asset: str) -> str:
    asset = asset.upper()
    return ASSET_ALIASES.get(asset, asset)


def parse_instrument(text: str) -> Instrument:
    """Parse ``exchange:BASE-QUOTE`` or ``BASE-QUOTE``; the exchange is case-insensitive."""
    exchange: str | None = None
    pair = text
    if ":" in text:
        exchange, pair = text.split(":", 1)
        exchange = exchange.lower()
        if not _EXCHANGE.match(exchange):
            raise InvalidInstrument(f"bad exchange name in {text!r}")
    match = _PAIR.match(pair.upper())
    if match is None:
        raise InvalidInstrument(f"{text!r} is not EXCHANGE:BASE-QUOTE or BASE-QUOTE")
    base, quote = (normalize_asset(part) for part in match.groups())
    return Instrument(exchange, base, quote)


def interval_ms(interval: str) -> int:
    """Length of a supported interval in ms; KeyError names the bad interval."""
    return INTERVALS[interval]


def bucket_start(time_ms: int, interval: str) -> int:
    """Start of the interval bucket that holds `time_ms`, aligned to the epoch (UTC)."""
    length = INTERVALS[interval]
    return time_ms - time_ms % length
