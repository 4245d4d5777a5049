"""The alert tables on SQLite and PostgreSQL: firings with their outbox rows in one
transaction, the relay, leases that never hand one delivery to two workers."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from cryptopulse.delivery.engine import AlertService
from cryptopulse.delivery.relay import OutboxRelay
from cryptopulse.store.alerts import (
    alert_events,
    alert_outbox,
    webhook_attempts,
    webhook_deliveries,
)

from .factories import T0, Clock, add_endpoint, fire_crosses, migrated


async def count(engine: AlertService, table: object) -> int:
    async with engine.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_firings_write_events_and_outbox_together(database_url: str) -> None:
    store = await migrated(database_url)
    try:
        engine = AlertService(store, clock=Clock())
        await add_endpoint(engine.db, "http://127.0.0.1:9/a")
        await add_endpoint(engine.db, "http://127.0.0.1:9/b")
        await add_endpoint(engine.db, "http://127.0.0.1:9/c", account="bob")
        await fire_crosses(engine, 7)
        assert await count(engine, alert_events) == 7
        assert await count(engine, alert_outbox) == 7
        relay = OutboxRelay(engine.db, None, Clock(), batch=5)
        assert await relay.relay_once() == 5
        assert await relay.relay_once() == 2
        assert await relay.relay_once() == 0
        assert await count(engine, alert_outbox) == 0
        # one delivery per event per enabled endpoint of alice (not bob's)
        assert await count(engine, webhook_deliveries) == 14
    finally:
        await store.close()


async def test_failed_write_keeps_the_firings(database_url: str) -> None:
    store = await migrated(database_url)
    engine = AlertService(store, clock=Clock())
    await fire_crosses(engine, 2)
    engine.book.on_price("coinbase:BTC-USD", 101.0, T0 + 100)
    await store.close()
    await store.engine.dispose()
    # A closed SQLite engine reconnects by itself, so break the table instead.
    async with store.engine.begin() as conn:
        await conn.execute(alert_outbox.delete())
        await conn.exec_driver_sql("ALTER TABLE alert_outbox RENAME TO alert_outbox_x")
    try:
        await engine.flush()
    except Exception:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert len(engine._pending) == 1  # kept for the next try
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE alert_outbox_x RENAME TO alert_outbox")
    assert await engine.flush() == 1
    assert await count(engine, alert_events) == 3
    assert await count(engine, alert_outbox) == 1
    await store.close()


async def test_a_lease_goes_to_one_worker(database_url: str) -> None:
    store = await migrated(database_url)
    try:
        engine = AlertService(store, clock=Clock())
        await add_endpoint(engine.db, "http://127.0.0.1:9/a")
        await fire_crosses(engine, 40)
        await OutboxRelay(engine.db, None, Clock(), batch=100).relay_once()
        now = T0 + 1
        claims = await asyncio.gather(*(engine.db.claim_due(now, 30_000, 15) for _ in range(4)))
        ids = [item.delivery.id for claim in claims for item in claim]
        assert len(ids) == len(set(ids)) == 40
        # leased: not due again until the lease ends
        assert await engine.db.claim_due(now + 1000, 30_000, 100) == []
        assert len(await engine.db.claim_due(now + 30_000, 30_000, 100)) == 40
    finally:
        await store.close()


async def test_a_poll_with_nothing_to_do_takes_no_write_lock(database_url: str) -> None:
    """The delivery worker polls twice a second; while the store writer holds the write
    lock (a trades flush), a poll that finds nothing must not wait for it."""
    store = await migrated(database_url)
    try:
        engine = AlertService(store, clock=Clock())
        await add_endpoint(engine.db, "http://127.0.0.1:9/a")
        relay = OutboxRelay(engine.db, None, Clock(), batch=10)
        async with store._write_lock:  # as the store writer does while it flushes
            async with asyncio.timeout(2):
                assert await relay.relay_once() == 0
                assert await engine.db.claim_due(T0 + 1, 30_000, 10) == []
        await fire_crosses(engine, 3)
        async with store._write_lock:  # work to do: that needs the lock, and waits for it
            waiting = asyncio.create_task(relay.relay_once())
            await asyncio.sleep(0.3)
            assert not waiting.done()
        assert await waiting == 3
        assert len(await engine.db.claim_due(T0 + 1, 30_000, 10)) == 3
    finally:
        await store.close()


async def test_two_relays_never_take_one_row(database_url: str) -> None:
    store = await migrated(database_url)
    try:
        engine = AlertService(store, clock=Clock())
        await add_endpoint(engine.db, "http://127.0.0.1:9/a")
        await fire_crosses(engine, 30)
        relays = [OutboxRelay(engine.db, None, Clock(), batch=7) for _ in range(3)]

        async def drain(relay: OutboxRelay) -> int:
            total = 0
            while done := await relay.relay_once():
                total += done
            return total

        counts = await asyncio.gather(*(drain(r) for r in relays))
        assert sum(counts) == 30
        assert await count(engine, webhook_deliveries) == 30
    finally:
        await store.close()


async def test_retention_prunes_finished_history_and_keeps_pending_work(
    database_url: str,
) -> None:
    store = await migrated(database_url)
    try:
        clock = Clock()
        engine = AlertService(store, clock=clock)
        endpoint, _ = await add_endpoint(engine.db, "http://127.0.0.1:9/a")
        await fire_crosses(engine, 6)  # 6 events at T0
        assert await OutboxRelay(engine.db, None, clock, batch=4).relay_once() == 4
        due = await engine.db.claim_due(T0 + 1, 30_000, 10)
        outcomes = ["delivered", "failed", "delivered"]  # the 4th stays pending
        for item, status in zip(due, outcomes, strict=False):
            await finish(engine, item.delivery.id, endpoint.id, status, T0 + 2)
        clock.advance(60)  # one more firing and delivery, a minute later
        await fire_crosses(engine, 1, time=clock.now)
        assert await OutboxRelay(engine.db, None, clock, batch=4).relay_once() == 3
        claimed = await engine.db.claim_due(clock.now + 1, 30_000, 10)
        # the new one and the 2 from the old outbox rows (and the old pending one again:
        # its lease ran out; it stays pending)
        recent = [d for d in claimed if d.delivery.created_at == clock.now]
        assert len(recent) == 3 and len(claimed) == 4
        for item in recent:
            await finish(engine, item.delivery.id, endpoint.id, "delivered", clock.now + 2)

        pruned = await engine.db.prune(before=T0 + 30_000)
        # the 3 old finished deliveries, their attempts and their events; the old
        # pending delivery's event and everything recent stay
        assert pruned == {"events": 3, "deliveries": 3, "attempts": 3}
        left = await count(engine, webhook_deliveries)
        assert left == 4  # 1 old pending + 3 finished a minute later
        assert await count(engine, alert_events) == 4  # 6 + 1 fired, 3 pruned
        assert await count(engine, webhook_attempts) == 3
        pending = [d for d in await engine.db.list_deliveries(endpoint.id) if d.status == "pending"]
        assert len(pending) == 1
        assert await engine.db.prune(before=T0 + 30_000) == {
            "events": 0,
            "deliveries": 0,
            "attempts": 0,
        }
    finally:
        await store.close()


async def finish(
    engine: AlertService, delivery_id: int, endpoint_id: str, status: str, at: int
) -> None:
    await engine.db.finish(
        delivery_id,
        {"status": status, "attempts": 1, "next_attempt_at": None, "last_attempt_at": at},
        {
            "delivery_id": delivery_id,
            "endpoint_id": endpoint_id,
            "time": at,
            "status_code": 200 if status == "delivered" else 500,
            "error": None,
            "duration_ms": 3,
        },
        None,
    )
