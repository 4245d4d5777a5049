"""Normalized, immutable market records shared by every source and consumer.

Times are integers, milliseconds since the epoch, UTC. `time` is the exchange's
own timestamp; `received` is when our process read the message.

Each is a frozen `msgspec.Struct` rather than a frozen dataclass: a record is built for
every trade (a trade and up to two tickers), and a Struct is built in a tenth of the time
and serialized by `msgspec.json` in a third of orjson's time for a dataclass
(docs/decisions.md, "Market records are msgspec Structs"). They hold only strings and
numbers, so they are left out of the garbage collector's tracking (`gc=False`). Copy one
with changes with `msgspec.structs.replace`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Side = Literal["buy", "sell"]


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One execution. `side` is the taker's side."""

    instrument: str
    trade_id: str
    price: float
    size: float
    side: Side
    time: int
    received: int


class Ticker(msgspec.Struct, frozen=True, gc=False):
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


class Candle(msgspec.Struct, frozen=True, gc=False):
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
