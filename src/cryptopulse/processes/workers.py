"""`serve --workers N`: N API worker processes sharing one listening socket.

The parent binds the socket and spawns the workers (as uvicorn's own supervisor does), so
each worker runs our `GracefulServer` and closes its streams with 1001 on shutdown.
SIGTERM/SIGINT to the parent is passed on to every worker, which drains and exits; a
worker that dies on its own is replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from cryptopulse.settings import Settings

log = logging.getLogger(__name__)

# A draining worker gets this long before it is killed.
STOP_TIMEOUT_S = 30.0


def _worker(values: dict[str, Any], sock: socket.socket) -> None:
    from cryptopulse.server import build_server, configure_logging

    settings = Settings(**values)
    configure_logging(settings)
    build_server(settings).run(sockets=[sock])


class Workers:
    """Spawns and supervises the worker processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.values = settings.model_dump()
        self._context = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._stopping = False

    def _spawn(self, sock: socket.socket, index: int) -> BaseProcess:
        proc = self._context.Process(
            target=_worker, args=(self.values, sock), name=f"cryptopulse-api-{index}"
        )
        proc.start()
        return proc

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> None:
        config = uvicorn.Config("cryptopulse", host=self.settings.host, port=self.settings.port)
        sock = config.bind_socket()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._procs = [self._spawn(sock, i) for i in range(self.settings.workers)]
        log.info("%d API workers on %s:%d", len(self._procs), config.host, config.port)
        while not self._stopping:
            for index, proc in enumerate(self._procs):
                proc.join(0.25)
                if proc.exitcode is not None and not self._stopping:
                    log.warning("worker %s exited (%s): replacing it", proc.name, proc.exitcode)
                    self._procs[index] = self._spawn(sock, index)
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker drains (1001 to streams) and exits
        for proc in self._procs:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
        sock.close()
