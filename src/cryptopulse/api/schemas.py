"""Response models: declared for the OpenAPI document; hot paths build the bytes themselves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SourceLabel = str  # "live" | "simulated" | "replay" | "import", joined with "+" when mixed


class InstrumentOut(BaseModel):
    instrument: str = Field(examples=["coinbase:BTC-USD"])
    exchange: str | None = Field(description="null for a composite (BASE-QUOTE)")
    base: str
    quote: str
    composite: bool
    source: SourceLabel | None


class InstrumentList(BaseModel):
    data: list[InstrumentOut]


class TickerOut(BaseModel):
    instrument: str
    bid: float | None
    ask: float | None
    last: float | None
    bid_size: float | None
    ask_size: float | None
    volume_24h: float | None
    time: int = Field(description="exchange time of the last update, ms since the epoch (UTC)")
    received: int = Field(description="when cryptopulse received it, ms since the epoch")
    source: SourceLabel | None = Field(description="live, simulated, replay or import")


class TickerList(BaseModel):
    data: list[TickerOut]
    source: str = Field(description="overall mode: live, simulated, replay, …")


class CandleOut(BaseModel):
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="base-asset volume")
    quote_volume: float
    trades: int
    closed: bool


class CandlePage(BaseModel):
    instrument: str
    interval: str
    source: SourceLabel | None
    data: list[CandleOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TradeOut(BaseModel):
    trade_id: str
    price: float
    size: float
    side: Literal["buy", "sell"] = Field(description="taker side")
    time: int
    received: int


class TradePage(BaseModel):
    instrument: str
    source: SourceLabel | None
    data: list[TradeOut]
    next_cursor: str | None


class FeedOut(BaseModel):
    name: str
    kind: str
    connected: bool
    instruments: int
    last_message: int | None
    age_ms: int | None
    messages: int
    reconnects: int
    gaps: int
    last_error: str | None


class ChainFeedOut(BaseModel):
    name: str
    chain_id: int
    connected: bool
    websocket: bool = Field(description="newHeads subscription live")
    head: int | None = Field(description="the node's latest block")
    processed: int | None = Field(description="newest block processed (confirmed)")
    lag_blocks: int | None = Field(description="head - processed, confirmation depth included")
    confirmations: int
    last_message: int | None = Field(description="when the node last answered, ms")
    age_ms: int | None
    reorgs: int
    last_error: str | None


class DependencyOut(BaseModel):
    ok: bool
    latency_ms: float = Field(description="time the ping took (at most about 1 s)")
    error: str | None = Field(description="the kind of failure when not ok")
    backend: str = Field(description="store: sqlite or postgresql; bus: MemoryBus or RedisBus")


class Dependencies(BaseModel):
    store: DependencyOut
    bus: DependencyOut


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    mode: str = Field(description="live, simulated, replay…: where market data comes from")
    role: Literal["all", "api", "ingest"] = Field(
        description="all: embedded; api: scale-out API worker; ingest: ingest shard"
    )
    store: bool
    bus: bool = Field(description="the bus answers (Redis in scale-out)")
    dependencies: Dependencies
    feeds: list[FeedOut]
    chains: list[ChainFeedOut] = Field(
        default_factory=list, description="EVM chain feeds (informational; not gating)"
    )


class Health(BaseModel):
    status: Literal["ok"]
