"""Killing the delivery worker (SIGKILL, a real `cryptopulse deliver` process) in the middle
of a batch and starting it again loses nothing, and re-sends at most the deliveries that
were in flight, with the same `webhook-id`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cryptopulse.delivery.engine import AlertService

from .factories import Clock, add_endpoint, fire_crosses, migrated
from .receiver import Receiver, running

EVENTS = 60
CONCURRENCY = 4


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "CRYPTOPULSE_DATABASE_URL": url,
        "CRYPTOPULSE_BUS_URL": "memory://",
        "CRYPTOPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "CRYPTOPULSE_DELIVERY_LEASE_S": "1",
        "CRYPTOPULSE_DELIVERY_BATCH": "8",
        "CRYPTOPULSE_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "CRYPTOPULSE_DELIVERY_POLL_INTERVAL_S": "0.05",
    }
    # `python -m cryptopulse.delivery` runs what `cryptopulse deliver` runs, without
    # importing the whole command line (seconds per start).
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cryptopulse.delivery"], env=env, stdout=out, stderr=out
        )


async def until(check: object, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_sigkill_mid_batch_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/alerts.db"
    store = await migrated(url)
    engine = AlertService(store, clock=Clock())
    receiver = Receiver(secrets=[], delay_s=0.3)  # slow: requests stay in flight
    endpoint, secret = await add_endpoint(engine.db, receiver.url)
    receiver.secrets.append(secret)
    await fire_crosses(engine, EVENTS)
    events = {e.id for e in await engine.db.list_events("alice", limit=1000)}
    log = tmp_path / "worker.log"
    async with running(receiver):
        worker = start_worker(url, log)
        try:
            await until(lambda: len(receiver.ids) >= 12)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            seen_at_kill = set(receiver.ids)
            done = {
                d.event_id
                for d in await engine.db.list_deliveries(endpoint.id, limit=1000)
                if d.status == "delivered"
            }
            in_flight = seen_at_kill - done
            assert 0 < len(in_flight) <= CONCURRENCY, (len(seen_at_kill), len(done))
            worker = start_worker(url, log)
            await until(lambda: set(receiver.ids) >= events, timeout=45)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(10)
    await store.close()
    assert receiver.invalid == 0
    assert set(receiver.ids) == events  # nothing lost
    repeated = {i for i, n in Counter(receiver.ids).items() if n > 1}
    assert repeated <= in_flight  # only the in-flight ones again, same webhook-id
    assert max(Counter(receiver.ids).values()) <= 2
