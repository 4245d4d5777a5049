"""Running the API under Gunicorn (deploy/gunicorn.conf.py): the ASGI app factory and a
Uvicorn worker that closes streams with 1001 before draining, like `cryptopulse serve`."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from uvicorn.workers import UvicornWorker

from cryptopulse.api.app import create_app
from cryptopulse.processes.replica import api_services, is_scale_out
from cryptopulse.server import GracefulServer
from cryptopulse.settings import Settings

__all__ = ["Worker", "create_api_app"]


def create_api_app() -> FastAPI:
    """The API for Gunicorn workers, settings from the environment. Scale-out workers do
    not migrate: the Gunicorn master does, once (`on_starting` in the config)."""
    settings = Settings()
    if is_scale_out(settings):
        return create_app(settings, api_services, migrate=False)
    return create_app(settings)


class _Server(GracefulServer):
    """GracefulServer finding the services in the app state (Gunicorn built the app)."""

    app: Any = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.services = getattr(getattr(self.app, "state", None), "services", None)
        super().handle_exit(sig, frame)


class Worker(UvicornWorker):
    """Uvicorn worker with uvloop, httptools and the 1001 stream drain."""

    CONFIG_KWARGS = {  # noqa: RUF012  (the base class declares it this way)
        "loop": "uvloop",
        "http": "httptools",
        "ws_ping_interval": None,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = Settings()  # what `cryptopulse serve` applies to its uvicorn Config
        self.config.ws_per_message_deflate = settings.ws_compression
        self.config.ws_max_size = settings.ws_max_frame_bytes

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = _Server(config=self.config)
        server.app = self.wsgi
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
