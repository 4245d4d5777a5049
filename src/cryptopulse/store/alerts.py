"""Tables and queries of alerts: rules, events, the transactional outbox, webhook
endpoints, deliveries and delivery attempts (migration 0006).

A firing is written as an event *and* an outbox row in one transaction (`record_firings`);
the relay turns outbox rows into deliveries and deletes them in one transaction
(`relay`); the dispatcher claims due deliveries with a lease (`claim_due`), so a worker
killed mid-batch leaves them to be claimed again once the lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import metadata

__all__ = [
    "AlertStore",
    "DeliveryRow",
    "DueDelivery",
    "EndpointRow",
    "EventRow",
    "OutboxRow",
    "RuleRow",
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


def _row(cls: Any, mapping: Any) -> Any:
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})


def _values(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


class AlertStore:
    """Queries of the alert tables over the shared `SQLStore` engine."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.engine = store.engine

    def _write(self) -> Any:
        """A write transaction; SQLite allows one writer, so ours take the store's lock."""
        return _Write(self.store)

    # --- rules -------------------------------------------------------------------------

    async def insert_rule(self, row: RuleRow) -> None:
        async with self._write() as conn:
            await conn.execute(alert_rules.insert().values(_values(row)))

    async def get_rule(self, account: str, rule_id: str) -> RuleRow | None:
        query = select(alert_rules).where(
            alert_rules.c.id == rule_id, alert_rules.c.account == account
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
        return _row(RuleRow, found) if found is not None else None

    async def list_rules(
        self, account: str | None, *, after: str | None = None, limit: int = 1000
    ) -> list[RuleRow]:
        """Rules of `account` (None: every account), by id, after the id `after`."""
        query = select(alert_rules).order_by(alert_rules.c.id).limit(limit)
        if account is not None:
            query = query.where(alert_rules.c.account == account)
        if after is not None:
            query = query.where(alert_rules.c.id > after)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_row(RuleRow, r) for r in rows]

    async def count_rules(self, account: str) -> int:
        query = select(func.count()).select_from(alert_rules)
        async with self.engine.connect() as conn:
            found = await conn.scalar(query.where(alert_rules.c.account == account))
        return int(found or 0)

    async def update_rule(self, row: RuleRow) -> None:
        async with self._write() as conn:
            values = _values(row)
            await conn.execute(update(alert_rules).where(alert_rules.c.id == row.id).values(values))

    async def delete_rule(self, account: str, rule_id: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                delete(alert_rules).where(
                    alert_rules.c.id == rule_id, alert_rules.c.account == account
                )
            )
        return bool(result.rowcount)

    # --- events and the outbox ---------------------------------------------------------

    async def record_firings(self, events: Sequence[EventRow], fired: dict[str, str]) -> None:
        """Write events, their outbox rows and the rules' new state (`fired`: rule id ->
        status) in ONE transaction: there is never an event without its outbox row."""
        if not events:
            return
        async with self._write() as conn:
            await conn.execute(alert_events.insert(), [_values(e) for e in events])
            await conn.execute(
                alert_outbox.insert(),
                [
                    {"event_id": e.id, "account": e.account, "created_at": e.created_at}
                    for e in events
                ],
            )
            last: dict[str, int] = {}
            for e in events:
                if e.rule_id is not None:
                    last[e.rule_id] = max(e.time, last.get(e.rule_id, e.time))
            for rule_id, time in last.items():
                values: dict[str, Any] = {"last_fired_at": time}
                if rule_id in fired:
                    values["status"] = fired[rule_id]
                stmt = update(alert_rules).where(alert_rules.c.id == rule_id).values(values)
                await conn.execute(stmt)

    async def list_events(
        self, account: str, *, before: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        """The account's events, newest first (ids sort by creation)."""
        query = select(alert_events).where(alert_events.c.account == account)
        if before is not None:
            query = query.where(alert_events.c.id < before)
        query = query.order_by(alert_events.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_row(EventRow, r) for r in rows]

    async def read_outbox(self, limit: int) -> list[OutboxRow]:
        query = (
            select(alert_outbox.c.seq, alert_outbox.c.event_id, alert_outbox.c.account)
            .add_columns(alert_events.c.body)
            .join(alert_events, alert_events.c.id == alert_outbox.c.event_id)
            .order_by(alert_outbox.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_row(OutboxRow, r) for r in rows]

    async def relay(self, seqs: Sequence[int], deliveries: Sequence[dict[str, Any]]) -> None:
        """Create the deliveries of relayed outbox rows and delete those rows, atomically."""
        async with self._write() as conn:
            if deliveries:
                await conn.execute(webhook_deliveries.insert(), list(deliveries))
            await conn.execute(delete(alert_outbox).where(alert_outbox.c.seq.in_(list(seqs))))

    # --- webhook endpoints -------------------------------------------------------------

    async def insert_endpoint(self, row: EndpointRow) -> None:
        async with self._write() as conn:
            await conn.execute(webhook_endpoints.insert().values(_values(row)))

    async def get_endpoint(self, account: str | None, endpoint_id: str) -> EndpointRow | None:
        query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        if account is not None:
            query = query.where(webhook_endpoints.c.account == account)
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
        return _row(EndpointRow, found) if found is not None else None

    async def list_endpoints(
        self, account: str, *, enabled_only: bool = False
    ) -> list[EndpointRow]:
        query = select(webhook_endpoints).where(webhook_endpoints.c.account == account)
        if enabled_only:
            query = query.where(webhook_endpoints.c.enabled.is_(True))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(webhook_endpoints.c.id))).mappings().all()
        return [_row(EndpointRow, r) for r in rows]

    async def count_endpoints(self, account: str) -> int:
        query = select(func.count()).select_from(webhook_endpoints)
        async with self.engine.connect() as conn:
            found = await conn.scalar(query.where(webhook_endpoints.c.account == account))
        return int(found or 0)

    async def update_endpoint(self, endpoint_id: str, **values: Any) -> None:
        async with self._write() as conn:
            stmt = update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            await conn.execute(stmt.values(values))

    async def delete_endpoint(self, account: str, endpoint_id: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                delete(webhook_endpoints).where(
                    webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.account == account
                )
            )
            await conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.endpoint_id == endpoint_id,
                    webhook_deliveries.c.status == "pending",
                )
                .values(status="failed", last_error="endpoint deleted", next_attempt_at=None)
            )
        return bool(result.rowcount)

    # --- deliveries --------------------------------------------------------------------

    async def add_delivery(self, values: dict[str, Any], event: EventRow | None = None) -> int:
        """One delivery (manual redelivery; with `event`, a test-fire of one endpoint)."""
        async with self._write() as conn:
            if event is not None:
                await conn.execute(alert_events.insert().values(_values(event)))
            result = await conn.execute(webhook_deliveries.insert().values(values))
            key = result.inserted_primary_key
        return int(key[0]) if key else 0

    async def claim_due(self, now: int, lease_ms: int, limit: int) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries of enabled endpoints (oldest due first)."""
        d, e = webhook_deliveries, webhook_endpoints
        due = and_(d.c.status == "pending", d.c.next_attempt_at <= now, d.c.lease_until <= now)
        ids_query = (
            select(d.c.id)
            .join(e, e.c.id == d.c.endpoint_id)
            .where(due, e.c.enabled.is_(True))
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        async with self._write() as conn:
            ids = list((await conn.execute(ids_query)).scalars())
            if not ids:
                return []
            # The lease condition again in the UPDATE: PostgreSQL re-checks it on rows
            # another worker leased meanwhile, so no delivery is claimed twice.
            stmt = update(d).where(d.c.id.in_(ids), due).values(lease_until=now + lease_ms)
            claimed = set((await conn.execute(stmt.returning(d.c.id))).scalars())
            rows = await _due_rows(conn, sorted(claimed))
        return rows

    async def finish(
        self,
        delivery_id: int,
        values: dict[str, Any],
        attempt: dict[str, Any],
        endpoint: tuple[str, dict[str, Any]] | None,
    ) -> None:
        """Record one attempt: the delivery's new state, the attempt log row and the
        endpoint's failure state, in one transaction."""
        async with self._write() as conn:
            stmt = update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            await conn.execute(stmt.values(values))
            await conn.execute(webhook_attempts.insert().values(attempt))
            if endpoint is not None:
                stmt = update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint[0])
                await conn.execute(stmt.values(endpoint[1]))

    async def list_deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 100
    ) -> list[DeliveryRow]:
        query = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(webhook_deliveries.c.id < before)
        query = query.order_by(webhook_deliveries.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_row(DeliveryRow, r) for r in rows]

    async def get_delivery(self, endpoint_id: str, delivery_id: int) -> DeliveryRow | None:
        query = select(webhook_deliveries).where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.endpoint_id == endpoint_id,
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
        return _row(DeliveryRow, found) if found is not None else None

    async def attempts(self, delivery_id: int) -> list[dict[str, Any]]:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.id)
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def _due_rows(conn: AsyncConnection, ids: list[int]) -> list[DueDelivery]:
    d, e, ev = webhook_deliveries, webhook_endpoints, alert_events
    query = (
        select(d, e, ev.c.body)
        .join(e, e.c.id == d.c.endpoint_id)
        .join(ev, ev.c.id == d.c.event_id)
        .where(d.c.id.in_(ids))
        .order_by(d.c.id)
    )
    rows = (await conn.execute(query)).all()
    out = []
    nd = len(d.columns)
    ne = len(e.columns)
    for row in rows:
        delivery = DeliveryRow(*row[:nd])
        endpoint = EndpointRow(*row[nd : nd + ne])
        out.append(DueDelivery(delivery, endpoint, row[nd + ne]))
    return out


class _Write:
    """`async with`: the SQLite write lock (when on SQLite) and a transaction."""

    def __init__(self, store: SQLStore) -> None:
        self._store = store
        self._conn: Any = None

    async def __aenter__(self) -> AsyncConnection:
        await self._store._write_lock.acquire()
        try:
            self._conn = self._store.engine.begin()
            conn: AsyncConnection = await self._conn.__aenter__()
        except BaseException:
            self._store._write_lock.release()
            raise
        return conn

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._conn.__aexit__(*exc)
        finally:
            self._store._write_lock.release()
