"""Pure market math: records, instruments, candles, composites. No I/O, no asyncio."""

from cryptopulse.domain.candles import CandleAggregator, aggregate_trades, merge_candles
from cryptopulse.domain.composite import CompositeBook
from cryptopulse.domain.indicators import (
    NAMES,
    IndicatorParams,
    IndicatorSet,
    IndicatorValues,
    compute_history,
)
from cryptopulse.domain.instruments import (
    INTERVALS,
    Instrument,
    InvalidInstrument,
    interval_ms,
    parse_instrument,
)
from cryptopulse.domain.levels import Level, find_levels
from cryptopulse.domain.models import Candle, Side, Ticker, Trade
from cryptopulse.domain.quant import QuantMetrics, quant_metrics
from cryptopulse.domain.signals import Signal, SignalEngine, SignalPerformance, signal_performance

__all__ = [
    "INTERVALS",
    "NAMES",
    "Candle",
    "CandleAggregator",
    "CompositeBook",
    "IndicatorParams",
    "IndicatorSet",
    "IndicatorValues",
    "Instrument",
    "InvalidInstrument",
    "Level",
    "QuantMetrics",
    "Side",
    "Signal",
    "SignalEngine",
    "SignalPerformance",
    "Ticker",
    "Trade",
    "aggregate_trades",
    "compute_history",
    "find_levels",
    "interval_ms",
    "merge_candles",
    "parse_instrument",
    "quant_metrics",
    "signal_performance",
]
