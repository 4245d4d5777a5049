"""A real webhook receiver for tests: Starlette under uvicorn on 127.0.0.1. It verifies
every request with the `standardwebhooks` reference package and records what came."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Receiver:
    """What the receiver got. `status` (and `headers`) is what it answers next."""

    secrets: list[str]
    port: int = field(default_factory=free_port)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)  # verified bodies
    ids: list[str] = field(default_factory=list)  # webhook-id of every request
    signatures: list[str] = field(default_factory=list)
    invalid: int = 0
    delay_s: float = 0.0  # answer this late (a slow receiver keeps requests in flight)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.ids.append(headers.get("webhook-id", ""))
        self.signatures.append(headers.get("webhook-signature", ""))
        verified = False
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                continue
        if not verified:
            self.invalid += 1
            return Response(status_code=400)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if 200 <= self.status < 300:
            self.received.append(orjson.loads(body))
        return Response(status_code=self.status, headers=self.headers)

    def unique(self) -> set[str]:
        return {body["id"] for body in self.received}


@asynccontextmanager
async def running(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "receiver failed to start"
            await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
