"""Response models of the analytics endpoints, declared for the OpenAPI document.

Routes build their bytes with orjson; these models document the shapes (docs/api-analytics.md
has the meaning of every field and the formulas behind them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Cursor = str | None
Band = Literal[0, 1, 2, 3, 4]


class IndicatorPoint(BaseModel):
    time: int = Field(description="open time of the closed candle, ms")
    values: dict[str, float | None] = Field(description="indicator name -> value (null: warm-up)")


class IndicatorPage(BaseModel):
    instrument: str
    interval: str
    names: list[str]
    data: list[IndicatorPoint]
    next_cursor: Cursor = Field(description="pass as ?cursor= for the next page")


class SignalOut(BaseModel):
    instrument: str
    interval: str
    time: int | None = Field(description="open time of the candle the signal was made on")
    close: float | None
    state: Literal["bullish", "bearish", "neutral"] | None
    strength: float | None = Field(description="0..1")
    rule: str | None = Field(description="breakout, trend, momentum or none")
    indicators: dict[str, float | None]


class SignalList(BaseModel):
    interval: str
    data: list[SignalOut]
    next_cursor: Cursor


class SignalChange(BaseModel):
    time: int
    state: Literal["bullish", "bearish", "neutral"]
    strength: float
    rule: str


class SignalHistory(BaseModel):
    instrument: str
    interval: str
    latest: SignalOut | None = Field(description="the current signal (memory)")
    data: list[SignalChange] = Field(description="changes of state, oldest first (store)")
    next_cursor: Cursor


class SignalPerformanceOut(BaseModel):
    instrument: str
    interval: str
    strategy_return: float
    hold_return: float
    hit_rate: float | None
    signals: int = Field(description="positions opened (changes to bullish or bearish)")
    window_start: int
    window_end: int


class LevelOut(BaseModel):
    price: float
    kind: Literal["support", "resistance"]
    touches: int
    strength: float
    first_time: int
    last_time: int


class LevelList(BaseModel):
    instrument: str
    interval: str
    close: float | None = Field(description="last close the levels are relative to")
    time: int | None
    data: list[LevelOut]


class QuantMetricsOut(BaseModel):
    instrument: str
    interval: str
    benchmark: str | None
    window_start: int | None
    window_end: int | None
    total_return: float | None
    cagr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    skew: float | None
    kurtosis: float | None
    tail_ratio: float | None
    profit_factor: float | None
    beta: float | None
    correlation: float | None
    periods: int


class GradePart(BaseModel):
    grade: float = Field(description="0..100")
    band: Band = Field(description="0: 0-20, 1: 20-40, 2: 40-60, 3: 60-80, 4: 80-100")
    label: str
    change_24h: float | None = Field(description="grade now minus grade 24 h before")


class FactorOut(BaseModel):
    value: float = Field(description="raw factor value")
    percentile: float = Field(description="cross-sectional percentile, 0..100")


class GradeOut(BaseModel):
    symbol: str
    instrument: str = Field(description="the instrument whose candles the grade uses")
    time: int = Field(description="as-of open time, ms")
    trader: GradePart | None
    investor: GradePart | None
    factors: dict[str, dict[str, FactorOut]] | None = None


class GradeList(BaseModel):
    time: int | None
    data: list[GradeOut]
    next_cursor: Cursor


class GradeHistoryPoint(BaseModel):
    time: int
    instrument: str
    trader: float | None
    investor: float | None


class GradeHistory(BaseModel):
    symbol: str
    data: list[GradeHistoryPoint]
    next_cursor: Cursor


class SupplyOut(BaseModel):
    circulating: float | None
    total: float | None
    max: float | None
    as_of: str | None = Field(description="date the supply figures were taken")


class TokenOnchainSupply(BaseModel):
    chain: str
    token: str = Field(description="contract address")
    block_number: int
    time: int = Field(description="the block's time, ms: the supply's as-of")
    total_supply: float = Field(description="token units")


class RegistryToken(BaseModel):
    symbol: str
    name: str
    sectors: list[str]
    supply: SupplyOut
    instrument: str | None = Field(description="instrument the price comes from")
    quote: str | None = Field(description="currency of price, market cap and FDV")
    price: float | None
    market_cap: float | None = Field(description="price x circulating supply")
    fdv: float | None = Field(
        description="price x fdv_supply: the on-chain total supply when fresh, else the "
        "registry's max supply (total when uncapped)"
    )
    supply_source: Literal["onchain", "registry"] = Field(
        description="where fdv_supply comes from (docs/onchain.md)"
    )
    fdv_supply: float | None = Field(description="the supply FDV is computed with")
    onchain_supply: TokenOnchainSupply | None = Field(
        description="the fresh on-chain totalSupply() read FDV uses, if any"
    )


class RegistryTokenList(BaseModel):
    data: list[RegistryToken]
    next_cursor: Cursor


class PerformanceOut(BaseModel):
    equal: float | None
    cap: float | None


class SectorOut(BaseModel):
    id: str
    name: str
    description: str
    members: list[str] = Field(description="members with candles (symbols)")
    time: int
    equal_index: float | None
    cap_index: float | None
    performance: dict[str, PerformanceOut] = Field(description="1h, 24h, 7d, 30d")
    breadth: float | None = Field(description="share of members above their 20-candle EMA")
    rank: int | None = Field(description="relative strength by 24 h return, 1 = strongest")
    rank_change_24h: int | None = Field(description="positive: rotated up")


class SectorDetail(SectorOut):
    correlations: dict[str, dict[str, float | None]] = Field(
        description="rolling correlation matrix of the members' returns"
    )
    member_correlation: dict[str, float | None] = Field(
        description="each member against the other members' equal-weighted returns"
    )
    breakdowns: list[str]
    breakdown_threshold: float | None


class SectorList(BaseModel):
    time: int | None
    data: list[SectorOut]


class SectorHistoryPoint(BaseModel):
    time: int
    equal_index: float
    cap_index: float | None


class SectorHistory(BaseModel):
    id: str
    data: list[SectorHistoryPoint]
    next_cursor: Cursor


class CorrelatedOut(BaseModel):
    instrument: str
    symbol: str
    correlation: float
    overlap: int = Field(description="returns both series have in the window")


class CorrelationsOut(BaseModel):
    instrument: str
    interval: str
    window: int = Field(description="candles in the window")
    time: int | None
    most: list[CorrelatedOut]
    least: list[CorrelatedOut]
