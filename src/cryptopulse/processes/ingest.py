"""`cryptopulse ingest --shard i/n`: sources and pipeline for one shard, no public API.

The shard owns the pairs whose hash falls in it (see `cryptopulse.sharding`): live and
simulated sources subscribe to those instruments only, and every source's events pass a
filter, so a replay of a capture holding every pair feeds each pair to exactly one shard.
The process writes the store, publishes to the bus, shares its state with API replicas,
creates candle partitions ahead, and serves `/healthz`, `/readyz` and `/metrics` on
`ingest_port` for probes. On SIGTERM it stops the sources, flushes open candles and
pending trades to the store and pending messages to Redis, then exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from cryptopulse.api import errors
from cryptopulse.api.routers import health
from cryptopulse.bus import BusUnavailable
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.processes._metrics import BusCollector
from cryptopulse.processes._migrate import migrate_locked
from cryptopulse.processes._shared import share_state
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.sharding import Shard, parse_shard
from cryptopulse.sources.base import EventSink, FeedStatus, Source, SourceKind
from cryptopulse.store import partitions

log = logging.getLogger(__name__)

# Redis down at start: how often to retry loading the channels' seqs.
_BUS_RETRY_S = 1.0


class ShardFilter:
    """An event sink passing on only the events of the shard's instruments."""

    def __init__(self, sink: EventSink, shard: Shard) -> None:
        self._sink = sink
        self._shard = shard
        self._owned: dict[str, bool] = {}

    def _owns(self, instrument: str) -> bool:
        owned = self._owned.get(instrument)
        if owned is None:
            owned = self._owned[instrument] = self._shard.owns(instrument)
        return owned

    async def on_trade(self, trade: Trade) -> None:
        if self._owns(trade.instrument):
            await self._sink.on_trade(trade)

    async def on_ticker(self, ticker: Ticker) -> None:
        if self._owns(ticker.instrument):
            await self._sink.on_ticker(ticker)


class ShardedSource:
    """A source whose events are filtered to one shard."""

    def __init__(self, source: Source, shard: Shard) -> None:
        self.source = source
        self.shard = shard
        self.name: str = source.name
        self.kind: SourceKind = source.kind
        self.status: FeedStatus = source.status

    async def run(self, sink: EventSink) -> None:
        await self.source.run(ShardFilter(sink, self.shard))


def ingest_services(settings: Settings) -> Services:
    """Services of one ingest shard (sources narrowed to the shard's instruments)."""
    from cryptopulse.sources.auto import build_sources

    shard = parse_shard(settings.shard)
    # Analytics and predictions need every instrument: API workers compute them from the
    # closed candles on the bus (one of them publishes); a shard only has its own subset.
    narrowed = settings.model_copy(
        update={
            "instruments": shard.select(settings.instruments),
            "analytics_enabled": False,
            "ml_enabled": False,
        }
    )
    sources, supervisors = build_sources(narrowed)
    wrapped: list[Source] = [ShardedSource(s, shard) for s in sources]
    services = Services.create(
        narrowed,
        wrapped,
        [*supervisors, partitions.maintain, share_supervisor(f"shard-{shard.index}")],
    )
    services.role = "ingest"
    return services


def share_supervisor(owner: str) -> Callable[[Services], Coroutine[Any, Any, None]]:
    """Supervisor writing sources and feeds for API replicas (Redis bus only)."""

    async def supervisor(services: Services) -> None:
        if isinstance(services.bus, RedisBus):
            BusCollector.bind(services.bus)
            await share_state(services.bus, services.market, owner)

    return supervisor


async def wait_for_bus(services: Services) -> None:
    """Redis must answer before the first publish numbers a message: seqs continue from
    what Redis holds. Retries until it does (the process is not ready meanwhile)."""
    bus = services.bus
    if not isinstance(bus, RedisBus):
        return
    while True:
        try:
            await bus.prepare_publisher()
            return
        except BusUnavailable as exc:
            log.warning("ingest: waiting for redis (%s)", exc)
            await asyncio.sleep(_BUS_RETRY_S)


def create_ingest_app(
    settings: Settings, services_factory: Callable[[Settings], Services] = ingest_services
) -> FastAPI:
    """The ingest process as an ASGI app: health and metrics only; the lifespan runs the
    shard's services."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = services_factory(settings)
        app.state.services = services
        await migrate_locked(services.store)
        await wait_for_bus(services)
        await services.start(migrate=False)
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="cryptopulse ingest",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(health.router)
    return app


def run_ingest(settings: Settings) -> None:
    """Run one ingest shard until SIGINT/SIGTERM (blocking)."""
    from cryptopulse.processes.replica import is_scale_out
    from cryptopulse.server import GracefulServer

    if not is_scale_out(settings):
        # With the in-process bus nothing this process publishes would reach an API.
        raise SystemExit("cryptopulse ingest needs CRYPTOPULSE_BUS_URL=redis://... (scale-out)")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server: GracefulServer | None = None

    def factory(s: Settings) -> Services:
        services = ingest_services(s)
        assert server is not None
        server.services = services
        return services

    app = create_ingest_app(settings, factory)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.ingest_port,
        log_level=settings.log_level,
        lifespan="on",
        server_header=False,
    )
    server = GracefulServer(config)
    log.info("ingest shard %s on http://%s:%d", settings.shard, settings.host, settings.ingest_port)
    server.run()
