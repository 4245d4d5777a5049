"""The server side of `bench/fanout.py`: one of three WebSocket servers and a publisher.

    python -m bench._fanout_server KIND PORT RATE KEY_FILE DB_PATH [PAD]

KIND is ``ours`` (the real app's ``/v1/stream``, a key checked at the handshake, the
publisher calling the memory bus as the pipeline does), ``broadcast`` (a raw `websockets`
server, the publisher calling ``websockets.broadcast``: the ceiling) or ``send_json`` (a
Starlette WebSocket route, the publisher awaiting ``send_json`` per client in a loop: the
typical peer). The publisher sends RATE messages a second on one channel; each carries
its publish time (``time.time_ns()``) so clients measure publish → receive, and PAD bytes
of padding (120 by default: a trade-sized payload). Every server runs on uvloop, as
`cryptopulse serve` does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import uvloop
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench._measure import app_server

CHANNEL = "trades:coinbase:BTC-USD"
_pad = "x" * 120  # a trade-sized payload


def _payload(seq: int) -> dict[str, Any]:
    return {"t": time.time_ns(), "n": seq, "pad": _pad}


async def _pace(rate: float, publish: Any) -> None:
    """Call `publish(seq)` `rate` times a second, catching up after a late tick."""
    start = time.perf_counter()
    seq = 0
    while True:
        seq += 1
        await publish(seq)
        delay = start + seq / rate - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))


async def serve_broadcast(port: int, rate: float) -> None:
    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def publish(seq: int) -> None:
        websockets.broadcast(clients, orjson.dumps(_payload(seq)).decode())

    async with websockets.serve(handler, "127.0.0.1", port, max_queue=None):
        await _pace(rate, publish)


async def serve_send_json(port: int, rate: float) -> None:
    clients: set[WebSocket] = set()

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        clients.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            clients.discard(ws)

    async def publish(seq: int) -> None:
        body = _payload(seq)
        for ws in tuple(clients):
            try:
                await ws.send_json(body)
            except Exception:  # noqa: BLE001  # a closed client leaves the set
                clients.discard(ws)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop", log_level="error")
    server = uvicorn.Server(config)
    await asyncio.gather(server.serve(), _pace(rate, publish))


async def serve_ours(port: int, rate: float, key_file: Path, db: Path) -> None:
    from bench._rest_server import _UNLIMITED
    from cryptopulse.api import create_app
    from cryptopulse.runtime import Services
    from cryptopulse.security.management import create_key
    from cryptopulse.settings import Settings

    plan = dict(_UNLIMITED, ws_connections=100_000, subscriptions=10)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        source="sim",
        bootstrap_key=False,
        plans={"bench": plan},
        # As the baselines: the clients' offer (bench fanout --compression) decides.
        ws_compression=True,
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        services.market.note_instrument("coinbase:BTC-USD", "replay")
        new = await create_key(
            services.access.db,
            account="bench",
            name="bench key",
            scopes=["market:read"],
            plan="bench",
            plans=set(services.access.plans),
            actor="bench",
        )
        bus = services.bus

        async def publish(seq: int) -> None:
            await bus.publish(CHANNEL, orjson.dumps(_payload(seq)), int(time.time() * 1000))

        key_file.write_text(new.key)
        await asyncio.gather(app_server(app, port, "error").serve(), _pace(rate, publish))


def main() -> None:
    global _pad
    kind, port, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    key_file, db = Path(sys.argv[4]), Path(sys.argv[5])
    if len(sys.argv) > 6:
        _pad = "x" * int(sys.argv[6])
    if kind == "ours":
        uvloop.run(serve_ours(port, rate, key_file, db))
        return
    key_file.write_text("-")
    if kind == "broadcast":
        uvloop.run(serve_broadcast(port, rate))
    else:
        uvloop.run(serve_send_json(port, rate))


if __name__ == "__main__":
    main()
