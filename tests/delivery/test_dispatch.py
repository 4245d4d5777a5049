"""Webhook delivery over real sockets: a receiver (uvicorn on 127.0.0.1) that is down for
a simulated hour gets every alert once it is back, each verified by the `standardwebhooks`
reference package; 410, Retry-After, redirects, five days of failures, secret rotation."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from cryptopulse.delivery.engine import AlertService
from cryptopulse.delivery.sealing import seal
from cryptopulse.delivery.signing import generate_secret
from cryptopulse.delivery.worker import DeliveryWorker
from cryptopulse.store.alerts import AlertStore
from cryptopulse.store.sql import SQLStore

from .factories import T0, Clock, add_endpoint, fire_crosses, migrated, settings_for
from .receiver import Receiver, running

HOUR_S = 3600.0


async def drain(worker: DeliveryWorker) -> int:
    """Run the worker until it finds nothing to do; returns the work done."""
    total = 0
    for _ in range(100):
        done = await worker.run_once()
        if not done:
            return total
        total += done
    raise AssertionError("the worker never ran out of work")


async def setup(
    tmp_path: Path, **overrides: object
) -> tuple[SQLStore, AlertService, DeliveryWorker, Clock]:
    url = f"sqlite+aiosqlite:///{tmp_path}/alerts.db"
    store = await migrated(url)
    clock = Clock()
    engine = AlertService(store, clock=clock)
    worker = DeliveryWorker(
        settings_for(url, **overrides), store, None, clock=clock, rng=random.Random(7)
    )
    return store, engine, worker, clock


async def test_receiver_down_for_an_hour_gets_every_alert_once(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path)
    receiver = Receiver(secrets=[])
    endpoint, secret = await add_endpoint(engine.db, receiver.url)
    receiver.secrets.append(secret)
    try:
        await fire_crosses(engine, 20)
        events = {e.id for e in await engine.db.list_events("alice", limit=100)}
        assert len(events) == 20
        for _ in range(60):  # an hour, a minute at a time: nobody listens on the port
            await drain(worker)
            clock.advance(60)
        log = await engine.db.list_deliveries(endpoint.id, limit=100)
        assert {d.status for d in log} == {"pending"}
        assert min(d.attempts for d in log) >= 4  # 0 s, 5 s, 5 min, 30 min
        assert all("ConnectError" in (d.last_error or "") for d in log)
        async with running(receiver):
            clock.advance(3 * HOUR_S)  # past the 2 h retry
            await drain(worker)
        assert receiver.invalid == 0
        assert receiver.unique() == events  # every alert, signatures valid
        assert set(receiver.ids) == events
        counts = Counter(receiver.ids)
        assert max(counts.values()) == 1
        log = await engine.db.list_deliveries(endpoint.id, limit=100)
        assert {d.status for d in log} == {"delivered"}
        stored = await engine.db.get_endpoint("alice", endpoint.id)
        assert stored is not None and stored.failing_since is None and stored.enabled
    finally:
        await worker.stop()
        await store.close()


async def test_gone_disables_and_retry_after_is_honoured(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path)
    gone = Receiver(secrets=[], status=410)
    busy = Receiver(secrets=[], status=503, headers={"Retry-After": "7200"})
    gone_ep, s1 = await add_endpoint(engine.db, gone.url)
    busy_ep, s2 = await add_endpoint(engine.db, busy.url)
    gone.secrets.append(s1)
    busy.secrets.append(s2)
    try:
        async with running(gone), running(busy):
            await fire_crosses(engine, 1)
            await drain(worker)
        stored = await engine.db.get_endpoint("alice", gone_ep.id)
        assert stored is not None and not stored.enabled
        assert stored.disabled_reason == "disabled: the endpoint answered 410 Gone"
        [delivery] = await engine.db.list_deliveries(busy_ep.id)
        assert delivery.status == "pending" and delivery.last_status == 503
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at >= clock.now + 7200 * 1000  # not 5 s
    finally:
        await worker.stop()
        await store.close()


async def test_redirects_are_not_followed(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path)
    target = Receiver(secrets=[])
    redirect = Receiver(secrets=[], status=307, headers={"Location": target.url})
    endpoint, secret = await add_endpoint(engine.db, redirect.url)
    redirect.secrets.append(secret)
    target.secrets.append(secret)
    try:
        async with running(redirect), running(target):
            await fire_crosses(engine, 1)
            await drain(worker)
        assert target.ids == [] and len(redirect.ids) == 1
        [delivery] = await engine.db.list_deliveries(endpoint.id)
        assert delivery.status == "pending"
        assert delivery.last_error == "HTTP 307: redirects are not followed"
    finally:
        await worker.stop()
        await store.close()


async def test_five_days_failing_disables_with_a_reason(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path)
    receiver = Receiver(secrets=[], status=500)
    endpoint, secret = await add_endpoint(engine.db, receiver.url)
    receiver.secrets.append(secret)
    await engine.db.update_endpoint(endpoint.id, failing_since=T0 - 5 * 86_400_000)
    try:
        async with running(receiver):
            await fire_crosses(engine, 1)
            await drain(worker)
        stored = await engine.db.get_endpoint("alice", endpoint.id)
        assert stored is not None and not stored.enabled
        assert stored.disabled_reason is not None
        assert stored.disabled_reason.startswith("disabled: failing since 2023-11-09")
        assert "HTTP 500" in stored.disabled_reason
        [delivery] = await engine.db.list_deliveries(endpoint.id)
        assert delivery.status == "failed"
    finally:
        await worker.stop()
        await store.close()


async def test_rotation_signs_with_both_secrets_in_the_grace_period(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path)
    old_only = Receiver(secrets=[])
    endpoint, old = await add_endpoint(engine.db, old_only.url)
    new = generate_secret()
    await engine.db.update_endpoint(
        endpoint.id,
        secret=seal(new, None),
        previous_secret=seal(old, None),
        previous_until=T0 + 3600_000,
    )
    old_only.secrets.append(old)
    try:
        async with running(old_only):
            await fire_crosses(engine, 1)
            await drain(worker)
            assert len(old_only.received) == 1
            assert len(old_only.signatures[0].split()) == 2
            old_only.secrets[:] = [new]  # the receiver switched: still valid
            clock.advance(HOUR_S + 1)  # grace over: one signature, the new secret
            await fire_crosses(engine, 1, time=T0 + 10_000)
            await drain(worker)
        assert old_only.invalid == 0 and len(old_only.received) == 2
        assert len(old_only.signatures[1].split()) == 1
    finally:
        await worker.stop()
        await store.close()


async def test_sealed_secrets_need_the_key(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path, webhook_secrets_key="k" * 32)
    receiver = Receiver(secrets=[])
    endpoint, secret = await add_endpoint(engine.db, receiver.url, key="k" * 32)
    receiver.secrets.append(secret)
    assert endpoint.secret.startswith("v1:") and secret not in endpoint.secret
    try:
        async with running(receiver):
            await fire_crosses(engine, 1)
            await drain(worker)
        assert len(receiver.received) == 1 and receiver.invalid == 0
    finally:
        await worker.stop()
        await store.close()


async def test_private_targets_are_refused_at_send_time(tmp_path: Path) -> None:
    store, engine, worker, clock = await setup(tmp_path, webhook_allow_private_targets=False)
    receiver = Receiver(secrets=[])
    endpoint, secret = await add_endpoint(engine.db, receiver.url)
    try:
        async with running(receiver):
            await fire_crosses(engine, 1)
            await drain(worker)
        assert receiver.ids == []  # no request left the process
        [delivery] = await engine.db.list_deliveries(endpoint.id)
        assert delivery.last_error == "refused: 127.0.0.1 is not a public address"
    finally:
        await worker.stop()
        await store.close()


__all__ = ["AlertStore"]
