"""Pure market math: records, instruments, candles, composites. No I/O, no asyncio."""

from cryptopulse.domain.candles import CandleAggregator, aggregate_trades, merge_candles
from cryptopulse.domain.composite import CompositeBook
from cryptopulse.domain.instruments import (
    INTERVALS,
    Instrument,
    InvalidInstrument,
    interval_ms,
    parse_instrument,
)
from cryptopulse.domain.models import Candle, Side, Ticker, Trade

__all__ = [
    "INTERVALS",
    "Candle",
    "CandleAggregator",
    "CompositeBook",
    "Instrument",
    "InvalidInstrument",
    "Side",
    "Ticker",
    "Trade",
    "aggregate_trades",
    "interval_ms",
    "merge_candles",
    "parse_instrument",
]
