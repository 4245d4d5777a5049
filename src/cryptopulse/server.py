"""Running the API under uvicorn, with a shutdown that closes streams with 1001 first."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

import uvicorn

from cryptopulse.api.app import create_app
from cryptopulse.processes._gc import GcPolicy
from cryptopulse.processes.replica import api_services, is_scale_out, migrate_once
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.sources.auto import build_sources
from cryptopulse.store import partitions

log = logging.getLogger(__name__)

# Time given to stream handlers to send 1001 before uvicorn closes sockets itself (with 1012).
DRAIN_S = 0.5


class GracefulServer(uvicorn.Server):
    """On SIGINT/SIGTERM: tell the services we are closing (streams send 1001 and stop),
    then let uvicorn drain HTTP requests and run the lifespan shutdown (which flushes
    open candles to the store). A second signal exits at once."""

    services: Services | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _draining = False
    _gc_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    async def startup(self, sockets: list[Any] | None = None) -> None:
        """Listen, then hand the process's heap to the GC policy (processes/_gc.py)."""
        await super().startup(sockets)
        settings = getattr(getattr(self.config.app, "state", None), "settings", None)
        if self.started and isinstance(settings, Settings) and settings.gc_freeze_s > 0:
            policy = GcPolicy(settings.gc_freeze_s, settings.gc_full_s, settings.gc_full_max_s)
            self._gc_task = asyncio.create_task(policy.run(), name="gc-policy")

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            await asyncio.gather(self._gc_task, return_exceptions=True)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining and sig == signal.SIGTERM:
            # A worker gets SIGTERM twice when its whole process group is signalled (the
            # `--workers` parent passes it on): only a repeated SIGINT cuts the drain short.
            return
        if self._draining or self._loop is None or self.services is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._loop.call_soon_threadsafe(self._begin_drain, sig, frame)

    def _begin_drain(self, sig: int, frame: FrameType | None) -> None:
        assert self.services is not None and self._loop is not None
        log.info("shutting down: closing streams, draining requests, flushing candles")
        self.services.closing.set()
        self._loop.call_later(DRAIN_S, uvicorn.Server.handle_exit, self, sig, frame)


def build_server(settings: Settings) -> GracefulServer:
    server: GracefulServer | None = None

    def services_factory(s: Settings) -> Services:
        if is_scale_out(s):
            # Scale-out: API only; sources run in `cryptopulse ingest` shards.
            services = api_services(s)
        else:
            sources, supervisors = build_sources(s)
            services = Services.create(s, sources, [*supervisors, partitions.maintain])
        assert server is not None
        server.services = services
        return services

    # Scale-out API workers do not migrate: `run` did, once, under a lock.
    app = create_app(settings, services_factory, migrate=not is_scale_out(settings))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        ws_max_size=settings.ws_max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        ws_ping_interval=None,  # the stream protocol has its own heartbeats
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
        access_log=settings.access_log,
    )
    server = GracefulServer(config)
    return server


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM (blocking); `settings.workers` > 1 runs worker processes."""
    configure_logging(settings)
    log.info(
        "cryptopulse on http://%s:%d (source=%s)", settings.host, settings.port, settings.source
    )
    if is_scale_out(settings):
        migrate_once(settings)
    elif settings.workers > 1:
        # Each worker would run its own sources and in-process bus: never what one wants.
        log.warning("--workers needs a redis:// bus URL (scale-out); serving with 1 worker")
        settings = settings.model_copy(update={"workers": 1})
    if settings.workers > 1:
        from cryptopulse.processes.workers import Workers

        Workers(settings).run()
        return
    build_server(settings).run()
