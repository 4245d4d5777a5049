"""Normalized, immutable market records shared by every source and consumer.

Times are integers, milliseconds since the epoch, UTC. `time` is the exchange's
own timestamp; `received` is when our process read the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution. `side` is the taker's side."""

    instrument: str
    trade_id: str
    price: float
    size: float
    side: Side
    time: int
    received: int


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid/ask and last price of one instrument (venue or composite)."""

    instrument: str
    bid: float | None
    ask: float | None
    last: float | None
    bid_size: float | None
    ask_size: float | None
    volume_24h: float | None
    time: int
    received: int


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV over [open_time, open_time + interval). `closed` is false while it can change."""

    instrument: str
    interval: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    closed: bool
