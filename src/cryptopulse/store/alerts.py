"""Tables and queries of alerts: rules, events, the transactional outbox, webhook
endpoints, deliveries and delivery attempts (migration 0006).

A firing is written as an event *and* an outbox row in one transaction (`record_firings`);
the relay turns outbox rows into deliveries and deletes them in one transaction
(`relay`); the dispatcher claims due deliveries with a lease (`claim_due`), so a worker
killed mid-batch leaves them to be claimed again once the lease runs out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cryptopulse.store._alerts_tables import (
    DeliveryRow,
    DueDelivery,
    EndpointRow,
    EventRow,
    OutboxRow,
    RuleRow,
    alert_events,
    alert_outbox,
    alert_rules,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from cryptopulse.store.sql import SQLStore

__all__ = [
    "AlertStore",
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

BuildDeliveries = Callable[[list[OutboxRow]], Awaitable[list[dict[str, Any]]]]


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

    async def _any(self, query: Any) -> bool:
        """Whether `query` finds a row: a read, so a poll that finds nothing to do neither
        opens a write transaction nor waits for the store's write lock (the store writer
        holds it while it flushes trades and candles)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

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

    async def relay(self, limit: int, build: BuildDeliveries) -> int:
        """Take up to `limit` outbox rows (oldest first), hand them to `build` (which
        publishes them and returns their deliveries), insert the deliveries and delete the
        rows, all in one transaction. Rows another relay deleted meanwhile are skipped, so
        two relays never both take one row; on failure everything stays for a retry."""
        query = (
            select(alert_outbox.c.seq, alert_outbox.c.event_id, alert_outbox.c.account)
            .add_columns(alert_events.c.body)
            .join(alert_events, alert_events.c.id == alert_outbox.c.event_id)
            .order_by(alert_outbox.c.seq)
            .limit(limit)
        )
        if not await self._any(select(alert_outbox.c.seq).limit(1)):
            return 0  # the usual answer of a poll: no write transaction, no write lock
        async with self._write() as conn:
            rows = [_row(OutboxRow, r) for r in (await conn.execute(query)).mappings().all()]
            if not rows:
                return 0
            seqs = [r.seq for r in rows]
            stmt = delete(alert_outbox).where(alert_outbox.c.seq.in_(seqs))
            taken = set((await conn.execute(stmt.returning(alert_outbox.c.seq))).scalars())
            rows = [r for r in rows if r.seq in taken]
            deliveries = await build(rows) if rows else []
            if deliveries:
                await conn.execute(webhook_deliveries.insert(), deliveries)
        return len(rows)

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
        if not await self._any(ids_query):
            return []
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

    # --- retention -------------------------------------------------------------------

    async def prune(self, before: int) -> dict[str, int]:
        """Delete what is finished and older than `before` (ms): delivered or failed
        deliveries with their attempt log, and events that no remaining delivery and no
        outbox row still needs (a kept delivery can be redelivered: it needs its event).
        Pending work is never pruned, whatever its age."""
        d, a, ev, ob = webhook_deliveries, webhook_attempts, alert_events, alert_outbox
        done = select(d.c.id).where(d.c.status != "pending", d.c.created_at < before)
        needed = select(d.c.event_id)  # after the deliveries' delete, in one transaction
        queued = select(ob.c.event_id)
        async with self._write() as conn:
            attempts = await conn.execute(delete(a).where(a.c.delivery_id.in_(done)))
            deliveries = await conn.execute(
                delete(d).where(d.c.status != "pending", d.c.created_at < before)
            )
            events = await conn.execute(
                delete(ev).where(
                    ev.c.created_at < before, ev.c.id.not_in(needed), ev.c.id.not_in(queued)
                )
            )
        return {
            "events": events.rowcount,
            "deliveries": deliveries.rowcount,
            "attempts": attempts.rowcount,
        }


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
