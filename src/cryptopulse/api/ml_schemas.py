"""Request and response models of the prediction endpoints, declared for OpenAPI.

Routes build their bytes with orjson; these models document the shapes (docs/models.md
explains the models, the features and every score).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
MAX_INSTRUMENTS = 100


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruments: list[str] = Field(
        min_length=1,
        max_length=MAX_INSTRUMENTS,
        description="`exchange:BASE-QUOTE` or `BASE-QUOTE`, at most 100",
        examples=[["binance:ETH-BTC", "binance:LTC-BTC"]],
    )
    interval: Interval | None = Field(None, description="default: the analytics interval")
    model: str | None = Field(
        None, max_length=64, description="model name (default: the built-in `baseline`)"
    )


class ModelRef(BaseModel):
    id: int
    name: str
    version: int
    kind: Literal["builtin", "onnx"]


class PredictionOut(BaseModel):
    instrument: str
    interval: str
    time: int = Field(description="open time of the newest closed candle in the features, ms")
    horizon: int = Field(description="candles ahead the prediction is about")
    target_time: int = Field(description="open time of the candle whose close is predicted")
    probability_up: float = Field(description="P(close at target_time > close at time), 0..1")
    model: ModelRef


class PredictionList(BaseModel):
    data: list[PredictionOut]


class ModelScores(BaseModel):
    """Out-of-sample scores of the walk-forward evaluation (docs/models.md)."""

    samples: int
    base_rate: float = Field(description="share of out-of-sample rows whose close went up")
    auc: float | None = Field(description="ROC AUC; 0.5 is chance")
    log_loss: float
    brier: float
    hit_rate: float = Field(description="share of rows where p > 0.5 matched the direction")
    log_loss_base_rate: float = Field(description="log loss of always answering the base rate")
    brier_base_rate: float
    decisions: int = Field(description="non-overlapping decision points (every horizon)")
    long_fraction: float
    strategy_return: float = Field(description="long when p > 0.5 else flat; no fees")
    hold_return: float = Field(description="long at every decision point")
    folds: int
    oos_start: int = Field(description="open time of the first out-of-sample row, ms")


class ModelOut(BaseModel):
    id: int
    name: str
    version: int
    kind: Literal["builtin", "onnx"]
    instrument: str | None = Field(description="null: serves every instrument")
    interval: str
    horizon: int
    feature_set: str
    features: list[str]
    window_start: int | None = Field(description="first candle of the training window, ms")
    window_end: int | None = Field(description="last labelled candle of the window, ms")
    created: int
    serving: bool = Field(description="loaded and answering requests")
    scores: ModelScores | None = Field(description="null for uploaded models (not evaluated)")


class ModelList(BaseModel):
    data: list[ModelOut]
