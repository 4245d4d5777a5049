"""The running service: store, bus, pipeline and sources, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptopulse.analytics import AnalyticsService
from cryptopulse.bus import Bus, create_bus
from cryptopulse.delivery.engine import AlertService
from cryptopulse.delivery.worker import DeliveryWorker
from cryptopulse.ml.service import PredictionService
from cryptopulse.onchain import OnchainService
from cryptopulse.pipeline import Pipeline
from cryptopulse.security.access import AccessControl
from cryptopulse.settings import Settings
from cryptopulse.sources.base import Source, now_ms
from cryptopulse.state import MarketState
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.writer import StoreWriter

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the API serves from. Built by `Services.create`, owned by the app lifespan."""

    settings: Settings
    store: SQLStore
    bus: Bus
    market: MarketState
    writer: StoreWriter
    pipeline: Pipeline
    sources: list[Source] = field(default_factory=list)
    # Set when shutdown begins: streams close with 1001, requests drain.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    # Long-running helpers started with the service (e.g. the auto-mode fallback supervisor).
    supervisors: list[Callable[[Services], Coroutine[Any, Any, None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _source_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # Indicators, signals, grades, sectors (None when analytics_enabled is off).
    analytics: AnalyticsService | None = None
    # EVM chains (None when no chain is configured; see docs/onchain.md).
    onchain: OnchainService | None = None
    # Predictions (None when ml_enabled is off; see docs/models.md).
    predictions: PredictionService | None = None
    # "all" (embedded: sources and API), "api" (scale-out API worker: no sources, state
    # from the bus) or "ingest" (sources and pipeline, no public API).
    role: str = "all"
    # Alert rules evaluated on the pipeline's updates, and the outbox/webhook worker
    # (docs/alerts.md); wired by `wire_alerts`.
    alerts: AlertService | None = None
    delivery: DeliveryWorker | None = None
    # Scale-out API worker: the Redis lock deciding which process publishes analytics
    # (an `AnalyticsLeader`; None in embedded mode, where this process always does).
    analytics_leader: Any = None
    # Keys, tokens, plans, rate limits, usage (built from settings and the store).
    access: AccessControl = field(init=False)

    def __post_init__(self) -> None:
        self.access = AccessControl(self.settings, self.store)
        wire_alerts(self)

    @classmethod
    def create(
        cls,
        settings: Settings,
        sources: Sequence[Source] | None = None,
        supervisors: Sequence[Callable[[Services], Coroutine[Any, Any, None]]] = (),
    ) -> Services:
        store = SQLStore(
            settings.database_url,
            settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout_s=settings.database_pool_timeout_s,
            connect_timeout_s=settings.database_connect_timeout_s,
            command_timeout_s=settings.database_command_timeout_s,
        )
        bus = create_bus(
            settings.bus_url,
            settings.bus_history,
            prefix=settings.redis_prefix,
            timeout_s=settings.redis_timeout_s,
            outbox=settings.redis_outbox,
        )
        market = MarketState()
        writer = StoreWriter(store, settings.store_flush_interval_s, settings.store_batch_size)
        pipeline = Pipeline(
            bus,
            market,
            writer,
            composite_stale_ms=settings.composite_stale_ms,
            fold_stablecoins=settings.fold_stablecoins,
            candle_update_ms=settings.candle_update_ms,
            ticker_update_ms=settings.ticker_update_ms,
        )
        analytics = None
        if settings.analytics_enabled:
            analytics = AnalyticsService(settings, store, bus)
            pipeline.closed_candle_hooks.append(analytics.on_closed_candle)
        predictions = PredictionService(settings, store, bus) if settings.ml_enabled else None
        if predictions is not None:
            pipeline.closed_candle_hooks.append(predictions.on_closed_candle)
        return cls(
            settings,
            store,
            bus,
            market,
            writer,
            pipeline,
            sources=list(sources or []),
            supervisors=list(supervisors),
            analytics=analytics,
            onchain=OnchainService(settings, store, bus) if settings.onchain_chains else None,
            predictions=predictions,
        )

    async def start(self, migrate: bool = True) -> None:
        if migrate:
            await self.store.migrate()
        await self.access.start()
        await self.bus.start()
        self.writer.start()
        if self.analytics is not None:
            await self.analytics.start()
        if self.predictions is not None:
            await self.predictions.start()
        if self.onchain is not None:
            # API-only replicas serve the stored metrics; the chains are followed elsewhere.
            await self.onchain.start(follow=self.role != "api")
        if self.alerts is not None:
            # Scale-out: ingest evaluates market rules, the analytics leader (an API worker)
            # signal/grade/sector rules; both reload what other processes change.
            self.alerts.refresh_s = 2.0 if self.role in ("ingest", "api") else None
            await self.alerts.start()
        if self.delivery is not None and self.role != "api":
            self.delivery.start()
        for source in list(self.sources):
            self.add_source(source)
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        self._tasks.append(asyncio.create_task(self.pipeline.run_updates(), name="candle-updates"))
        for supervisor in self.supervisors:
            self._tasks.append(asyncio.create_task(supervisor(self), name="supervisor"))

    def add_source(self, source: Source) -> None:
        """Start a source now (also used by the auto-mode supervisor)."""
        if source not in self.sources:
            self.sources.append(source)
        self.market.feeds[source.name] = source.status
        for instrument in source.status.instruments:
            self.market.note_instrument(instrument, source.kind)
        task = asyncio.create_task(self._run_source(source), name=f"source:{source.name}")
        self._source_tasks[source.name] = task
        self._tasks.append(task)

    async def remove_source(self, source: Source) -> None:
        """Stop a source; its instruments keep their data and their source label."""
        task = self._source_tasks.pop(source.name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if source in self.sources:
            self.sources.remove(source)
        source.status.connected = False
        self.market.feeds.pop(source.name, None)

    async def _run_source(self, source: Source) -> None:
        try:
            await source.run(self.pipeline)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a source bug must not take the service down
            log.exception("source %s stopped", source.name)
            source.status.connected = False
            source.status.last_error = type(exc).__name__

    async def _housekeeping(self) -> None:
        """Close candles whose interval ended, record new instruments, prune old trades and
        finished alert history (every 10 minutes)."""
        grace = self.settings.candle_close_grace_ms
        retention_ms = int(self.settings.trade_retention_hours * 3_600_000)
        recorded: dict[str, str] = {}
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            try:
                if any(s.kind in ("live", "simulated") for s in self.sources):
                    await self.pipeline.close_due(now_ms() - grace)
                fresh = {k: v for k, v in self.market.sources.items() if recorded.get(k) != v}
                for kind in set(fresh.values()):
                    names = [k for k, v in fresh.items() if v == kind]
                    await self.store.record_instruments(names, kind, now_ms())
                recorded.update(fresh)
                if ticks % 600 == 0:
                    await self.store.prune_trades(now_ms() - retention_ms)
                    await self._prune_alerts()
            except Exception:
                log.exception("housekeeping failed; continuing")

    async def _prune_alerts(self) -> None:
        days = self.settings.alert_retention_days
        if self.alerts is None or days <= 0:
            return
        pruned = await self.alerts.db.prune(now_ms() - int(days * 86_400_000))
        if any(pruned.values()):
            log.info("alert retention: deleted %s", pruned)

    async def stop(self) -> None:
        """Stop sources, flush open candles and pending writes, close everything."""
        self.closing.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        fresh = dict(self.market.sources)
        for kind in set(fresh.values()):
            names = [k for k, v in fresh.items() if v == kind]
            await self.store.record_instruments(names, kind, now_ms())
        self.pipeline.flush_open()
        await self.writer.stop()
        if self.analytics is not None:
            await self.analytics.stop()
        if self.onchain is not None:
            await self.onchain.stop()
        if self.alerts is not None:
            await self.alerts.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        if self.predictions is not None:
            await self.predictions.stop()
        await self.bus.close()
        await self.access.stop()
        await self.store.close()


def wire_alerts(services: Services) -> None:
    """Alert rules on prices, closed candles, signals, grades, sectors and large transfers;
    the delivery worker (embedded unless `delivery_embedded` is off). docs/alerts.md."""
    settings = services.settings
    if not settings.alerts_enabled:
        return
    alerts = AlertService(services.store, flush_interval_s=settings.alerts_flush_interval_s)
    services.alerts = alerts
    services.pipeline.price_hooks.append(alerts.on_price)
    services.pipeline.closed_candle_hooks.append(alerts.on_closed_candle)
    if services.analytics is not None:
        services.analytics.signal_hooks.append(alerts.on_signal)
        services.analytics.state_hooks.append(alerts.on_analytics)
    if services.onchain is not None:
        services.onchain.whale_hooks.append(alerts.on_whale)
    if settings.delivery_embedded:
        services.delivery = DeliveryWorker(settings, services.store, services.bus)
        alerts.committed = services.delivery.wake
    # Local: the metrics module imports `cryptopulse.api`, which imports this module.
    from cryptopulse.delivery.metrics import AlertCollector

    AlertCollector.bind(alerts, services.delivery)
