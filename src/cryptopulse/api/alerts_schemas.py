"""Request and response models of `/v1/alerts` and `/v1/webhooks` (docs/alerts.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RuleKind = Literal[
    "price_cross",
    "pct_move",
    "volume_spike",
    "signal_change",
    "grade_band",
    "grade_move",
    "level_break",
    "sector_rotation",
    "correlation_breakdown",
    "large_transfer",
]
MAX_COOLDOWN_MS = 30 * 86_400_000

PARAMS_DOC = """Parameters of the rule kind (docs/alerts.md):
- price_cross: instrument, level, direction (up|down|either)
- pct_move: instrument, percent, window_ms, direction, interval (candles, default 1m)
- volume_spike: instrument, z (default 3), window (candles, default 20), interval
- signal_change: instrument, interval (default 5m), to (bullish|bearish|neutral|any)
- grade_band: symbol, grade (trader|investor), direction
- grade_move: symbol, grade, points
- level_break: instrument, interval (default 1m), side (support|resistance|either), lookback
- sector_rotation: sector, top, direction (enters|leaves|either)
- correlation_breakdown: sector and/or symbol (optional)
- large_transfer: chain, token (symbol or address), min_amount, direction
  (either|to_exchange|from_exchange)"""


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: RuleKind
    params: dict[str, Any] = Field(description=PARAMS_DOC, max_length=12)
    cooldown_ms: int = Field(0, ge=0, le=MAX_COOLDOWN_MS, description="quiet time after firing")
    one_shot: bool = Field(False, description="deactivate after the first firing")


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    params: dict[str, Any] | None = Field(None, max_length=12)
    cooldown_ms: int | None = Field(None, ge=0, le=MAX_COOLDOWN_MS)
    one_shot: bool | None = None


class RuleOut(BaseModel):
    id: str
    name: str
    kind: RuleKind
    params: dict[str, Any]
    cooldown_ms: int
    one_shot: bool
    status: Literal["active", "paused", "fired"] = Field(
        description="fired: a one-shot rule that has fired (resume re-arms it)"
    )
    created_at: int
    updated_at: int
    last_fired_at: int | None


class RuleList(BaseModel):
    data: list[RuleOut]
    next_cursor: str | None


class AlertEvent(BaseModel):
    """One firing, as sent on the `alerts` channel and to webhooks."""

    id: str = Field(description="stable event id; also the webhook-id header")
    type: str = Field(description="alert.fired, or webhook.test for a test-fire")
    time: int = Field(description="market time of the firing, ms")
    data: dict[str, Any]


class EventList(BaseModel):
    data: list[AlertEvent]
    next_cursor: str | None


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, examples=["https://example.com/hooks"])
    description: str = Field("", max_length=200)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=8, max_length=2048)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint")


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="why it was disabled (410, 5 days failing)")
    failing_since: int | None
    rotating_until: int | None = Field(description="the previous secret also signs until then")
    created_at: int
    updated_at: int


class NewSecretOut(EndpointOut):
    secret: str = Field(description="whsec_...: shown this once, never again")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: int | None = Field(None, ge=0, le=7 * 86_400, description="old secret signs too")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: int | None
    created_at: int
    last_attempt_at: int | None
    last_status: int | None
    last_error: str | None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None
