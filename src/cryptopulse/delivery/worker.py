"""The delivery worker: outbox relay and webhook dispatcher in one loop. Runs inside the
embedded process by default, or alone as `cryptopulse deliver` (`run_deliver`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable

import httpx

from cryptopulse.bus.base import Bus
from cryptopulse.delivery.dispatcher import DispatchPolicy, WebhookDispatcher
from cryptopulse.delivery.relay import OutboxRelay
from cryptopulse.delivery.ssrf import Resolver
from cryptopulse.settings import Settings
from cryptopulse.sources.base import now_ms
from cryptopulse.store.alerts import AlertStore
from cryptopulse.store.sql import SQLStore

__all__ = ["DeliveryWorker", "policy_from", "run_deliver"]

log = logging.getLogger(__name__)


def policy_from(settings: Settings) -> DispatchPolicy:
    return DispatchPolicy(
        schedule_s=tuple(settings.webhook_retry_schedule_s),
        timeout_s=settings.webhook_timeout_s,
        allow_private=settings.webhook_allow_private_targets,
        lease_s=settings.delivery_lease_s,
        batch=settings.delivery_batch,
        concurrency=settings.delivery_concurrency,
        disable_after_s=settings.webhook_disable_after_s,
        secrets_key=settings.webhook_secrets_key,
    )


class DeliveryWorker:
    """Relays the outbox and dispatches due webhooks until stopped."""

    def __init__(
        self,
        settings: Settings,
        store: SQLStore,
        bus: Bus | None,
        *,
        clock: Callable[[], int] = now_ms,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        db = AlertStore(store)
        self.poll_s = settings.delivery_poll_interval_s
        self.relay = OutboxRelay(db, bus, clock, settings.delivery_batch)
        self.dispatcher = WebhookDispatcher(
            db, policy_from(settings), clock, transport=transport, resolver=resolver, rng=rng
        )
        self.wake = asyncio.Event()  # set by the engine after a commit
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.dispatcher.close()

    async def run_once(self) -> int:
        """One relay batch and one dispatch batch; returns the work done."""
        return await self.relay.relay_once() + await self.dispatcher.dispatch_once()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("alert delivery failed; retrying")
                busy = 0
            if busy:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self.wake.wait()


async def _serve(settings: Settings) -> None:
    from cryptopulse.bus import create_bus

    store = SQLStore(settings.database_url, settings.database_pool_size)
    await store.migrate()
    bus = create_bus(
        settings.bus_url,
        settings.bus_history,
        prefix=settings.redis_prefix,
        timeout_s=settings.redis_timeout_s,
        outbox=settings.redis_outbox,
    )
    await bus.start()
    worker = DeliveryWorker(settings, store, bus)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker.start()
    log.info("delivery worker running")
    await stop.wait()
    await worker.stop()
    await bus.close()
    await store.close()


def run_deliver(settings: Settings) -> None:
    """`cryptopulse deliver`: the delivery worker as its own process, until SIGTERM."""
    asyncio.run(_serve(settings))
