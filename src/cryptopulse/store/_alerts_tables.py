"""Tables and row records of alerts (migration 0006); queries are in store/alerts.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from cryptopulse.store.tables import metadata

__all__ = [
    "DeliveryRow",
    "DueDelivery",
    "EndpointRow",
    "EventRow",
    "OutboxRow",
    "RuleRow",
    "alert_events",
    "alert_outbox",
    "alert_rules",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
]

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("cooldown_ms", BigInteger, nullable=False),
    Column("one_shot", Boolean, nullable=False),
    Column("status", String(8), nullable=False),  # active | paused | fired
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_fired_at", BigInteger, nullable=True),
    Index("ix_alert_rules_account", "account", "id"),
)
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("rule_id", String(32), nullable=True),  # None: a webhook test-fire
    Column("kind", String(32), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # the JSON sent on the stream and to webhooks
    Index("ix_alert_events_account", "account", "created_at"),
)
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(200), nullable=False),
    Column("secret", Text, nullable=False),  # sealed (delivery/sealing.py)
    Column("previous_secret", Text, nullable=True),
    Column("previous_until", BigInteger, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(300), nullable=True),
    Column("failing_since", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_webhook_endpoints_account", "account"),
)
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(32), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("lease_until", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_attempt_at", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False),
    Column("endpoint_id", String(32), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)


@dataclass(slots=True)
class RuleRow:
    id: str
    account: str
    name: str
    kind: str
    params: str
    cooldown_ms: int
    one_shot: bool
    status: str
    created_at: int
    updated_at: int
    last_fired_at: int | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: str
    account: str
    rule_id: str | None
    kind: str
    time: int
    created_at: int
    body: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    event_id: str
    account: str
    body: str


@dataclass(slots=True)
class EndpointRow:
    id: str
    account: str
    url: str
    description: str
    secret: str
    previous_secret: str | None
    previous_until: int | None
    enabled: bool
    disabled_reason: str | None
    failing_since: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    endpoint_id: str
    event_id: str
    account: str
    status: str
    attempts: int
    next_attempt_at: int | None
    lease_until: int
    created_at: int
    last_attempt_at: int | None
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery with what sending it needs."""

    delivery: DeliveryRow
    endpoint: EndpointRow
    body: str
