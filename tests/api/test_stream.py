"""`/v1/stream` against the real app under a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cryptopulse.api._stream_ops import OpError, normalize_channel
from cryptopulse.api._stream_queue import SendQueue
from cryptopulse.api.app import create_app
from cryptopulse.api.metrics import REGISTRY
from cryptopulse.bus import Gap, MemoryBus, Message, Subscription, build_message
from cryptopulse.domain.models import Trade
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings

TRADES = "trades:coinbase:BTC-USD"
TICKER = "ticker:coinbase:BTC-USD"
T0 = 1_700_000_000_000


@dataclass
class Running:
    app: FastAPI
    url: str

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def publish(self, channel: str, count: int, start: int = 0) -> None:
        """Publish `count` messages in one burst: no task switch happens in between."""
        for i in range(start, start + count):
            await self.services.bus.publish(channel, orjson.dumps({"n": i}), T0 + i)


# uvicorn's WebSocket implementations: `auto` is websockets-sansio, where frames are
# written straight to the transport; `websockets` (legacy) takes the ASGI send path.
WS_IMPLS = ("auto", "websockets")


@pytest.fixture(params=WS_IMPLS)
def ws_impl(request: pytest.FixtureRequest) -> str:
    impl: str = request.param
    return impl


@asynccontextmanager
async def serve(
    tmp_path: Path, ws: str = "auto", root_path: str = "", **overrides: Any
) -> AsyncIterator[Running]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        source="sim",
        # Anonymous callers on the pro plan: these tests are about the stream, not credentials.
        anonymous_plan="pro",
        **overrides,
    )
    app = create_app(settings, services_factory=lambda s: Services.create(s, sources=[]))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        ws=ws,
        root_path=root_path,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(app, f"ws://127.0.0.1:{port}/v1/stream")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def client(url: str, compression: str | None = "deflate") -> AsyncIterator[ClientConnection]:
    async with connect(url, open_timeout=5, close_timeout=2, compression=compression) as ws:
        yield ws


async def send(ws: ClientConnection, **op: Any) -> None:
    await ws.send(orjson.dumps(op).decode())


async def recv(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), "frames are text"
    frame: dict[str, Any] = orjson.loads(raw)
    return frame


async def closed_code(ws: ClientConnection) -> int | None:
    """Read (and drop) frames until the server closes; return its close code."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 3)
    return ws.close_code


async def subscribe(ws: ClientConnection, *channels: str, **resume: int) -> dict[str, Any]:
    await send(ws, op="subscribe", id=1, channels=list(channels), resume=resume or None)
    reply = await recv(ws)
    assert reply["type"] == "subscribed", reply
    return reply


def trade(trade_id: str, price: float, time: int) -> Trade:
    return Trade("coinbase:BTC-USD", trade_id, price, 0.5, "buy", time, time + 5)


async def test_subscribe_sends_snapshot_then_live(tmp_path: Path, ws_impl: str) -> None:
    async with serve(tmp_path, ws=ws_impl) as running, client(running.url) as ws:
        await running.services.pipeline.on_trade(trade("1", 100.0, T0))
        await send(ws, op="subscribe", id=7, channels=["trades:COINBASE:btc-usd", TICKER])
        assert await recv(ws) == {"type": "subscribed", "id": 7, "channels": [TRADES, TICKER]}
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        assert (snapshot["channel"], snapshot["seq"]) == (TRADES, 1)
        assert snapshot["data"]["trade_id"] == "1"
        ticker = await recv(ws)
        assert (ticker["type"], ticker["channel"], ticker["data"]["last"]) == (
            "snapshot",
            TICKER,
            100.0,
        )

        await running.services.pipeline.on_trade(trade("2", 101.0, T0 + 1))
        live = await recv(ws)
        assert (live["type"], live["channel"], live["seq"], live["time"]) == (
            "data",
            TRADES,
            2,
            T0 + 1,
        )
        assert live["data"]["price"] == 101.0
        assert (await recv(ws))["channel"] == TICKER


async def test_resume_receives_every_missed_message_once_in_order(
    tmp_path: Path, ws_impl: str
) -> None:
    async with serve(tmp_path, ws=ws_impl) as running:
        await running.publish(TRADES, 3)
        async with client(running.url) as ws:
            await subscribe(ws, TRADES)
            assert (await recv(ws))["seq"] == 3  # the snapshot
            await running.publish(TRADES, 2, start=3)
            assert [(await recv(ws))["seq"] for _ in range(2)] == [4, 5]
        await running.publish(TRADES, 4, start=5)  # seqs 6..9 while disconnected

        async with client(running.url) as ws:
            await subscribe(ws, TRADES, **{TRADES: 5})
            await running.publish(TRADES, 1, start=9)
            frames = [await recv(ws) for _ in range(5)]
            assert [(f["type"], f["seq"]) for f in frames] == [("data", s) for s in range(6, 11)]
            assert [f["data"]["n"] for f in frames] == [5, 6, 7, 8, 9]
            await send(ws, op="ping", id=2)
            assert await recv(ws) == {"type": "pong", "id": 2}  # nothing else came


async def test_resume_beyond_history_gets_gap_then_snapshot(tmp_path: Path) -> None:
    async with serve(tmp_path, bus_history=10) as running, client(running.url) as ws:
        await running.publish(TRADES, 30)
        await subscribe(ws, TRADES, **{TRADES: 5})
        assert await recv(ws) == {"type": "gap", "channel": TRADES, "from_seq": 6, "to_seq": 20}
        snapshot = await recv(ws)
        assert (snapshot["type"], snapshot["seq"]) == ("snapshot", 30)
        await running.publish(TRADES, 1, start=30)
        assert (await recv(ws))["seq"] == 31


async def test_resume_from_a_future_seq_means_the_history_restarted(tmp_path: Path) -> None:
    async with serve(tmp_path) as running, client(running.url) as ws:
        await running.publish(TRADES, 3)
        await subscribe(ws, TRADES, **{TRADES: 500})
        assert await recv(ws) == {"type": "gap", "channel": TRADES, "from_seq": 1, "to_seq": 3}
        assert (await recv(ws))["seq"] == 3


async def test_bad_frames_get_errors_and_the_connection_stays_usable(tmp_path: Path) -> None:
    async with serve(tmp_path) as running, client(running.url) as ws:
        await ws.send("{not json")
        assert (await recv(ws))["code"] == "invalid_json"
        await send(ws, op="dance", id=3)
        assert await recv(ws) == {
            "type": "error",
            "id": 3,
            "code": "unknown_op",
            "message": "unknown op 'dance'",
        }
        await send(ws, op="subscribe", id=4, channels=["signals:BTC", TRADES])
        error = await recv(ws)
        assert (error["id"], error["code"]) == (4, "unknown_channel")
        await send(ws, op="subscribe", id=5, channels=TRADES)
        assert (await recv(ws))["code"] == "invalid_request"
        await send(ws, op="auth", token="anything")
        assert (await recv(ws))["code"] == "invalid_token"
        await send(ws, op="ping", id=6)
        assert await recv(ws) == {"type": "pong", "id": 6}
        await subscribe(ws, TRADES)  # nothing of the refused subscribe stuck
        await running.publish(TRADES, 1)
        assert (await recv(ws))["seq"] == 1


async def test_too_many_channels_is_refused(tmp_path: Path) -> None:
    names = [f"trades:coinbase:A{i}-USD" for i in range(201)]
    async with serve(tmp_path) as running, client(running.url) as ws:
        await subscribe(ws, *names[:150])
        await send(ws, op="subscribe", id=9, channels=names[150:])
        error = await recv(ws)
        assert (error["id"], error["code"]) == (9, "too_many_subscriptions")


async def test_unsubscribe_stops_the_channel(tmp_path: Path) -> None:
    async with serve(tmp_path) as running, client(running.url) as ws:
        await subscribe(ws, TRADES)
        await send(ws, op="unsubscribe", id=2, channels=[TRADES])
        assert await recv(ws) == {"type": "unsubscribed", "id": 2, "channels": [TRADES]}
        await running.publish(TRADES, 3)
        await send(ws, op="ping", id=3)
        assert await recv(ws) == {"type": "pong", "id": 3}


async def test_oversize_frame_closes_1009(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_max_frame_bytes=1024) as running, client(running.url) as ws:
        await send(ws, op="ping", id="x" * 1024)
        assert await closed_code(ws) == 1009


async def test_slow_consumer_is_closed_4008(tmp_path: Path, ws_impl: str) -> None:
    async with serve(tmp_path, ws=ws_impl, ws_send_queue=4) as running:
        before = _connections()
        async with client(running.url) as ws:
            await subscribe(ws, TRADES)
            # The client stops reading: TCP's buffers fill, then the server's transport,
            # then the connection's queue of 4 live messages, and the server gives up.
            ws.transport.pause_reading()
            bus = running.services.bus
            assert isinstance(bus, MemoryBus)
            pad = secrets.token_hex(32768)  # 64 KB that permessage-deflate cannot shrink
            sent = 0
            async with asyncio.timeout(20):
                while bus._subscribers.get(TRADES):
                    assert sent < 2000, "the server never gave up on the slow client"
                    for _ in range(10):
                        sent += 1
                        data = orjson.dumps({"n": sent, "pad": pad[sent:] + pad[:sent]})
                        await bus.publish(TRADES, data, T0 + sent)
                    await asyncio.sleep(0.01)
            if ws_impl == "auto":
                # The server is done with the connection without waiting for the client
                # to read: the close frame waits behind the data in the socket's buffer.
                async with asyncio.timeout(3):
                    while _connections() != before:
                        await asyncio.sleep(0.01)
            ws.transport.resume_reading()
            # What was sent before the close arrives whole and in order, then 4008.
            seqs = []
            with pytest.raises(ConnectionClosed):
                while True:
                    seqs.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5))["seq"])
            assert ws.close_code == 4008
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < sent


async def test_a_burst_goes_straight_to_the_socket(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_send_queue=4) as running, client(running.url) as ws:
        await subscribe(ws, TRADES)
        await running.publish(TRADES, 50)  # more than the queue holds, in one go
        await send(ws, op="ping", id=2)
        seqs = []
        while (frame := await recv(ws))["type"] != "pong":
            seqs.append(frame["seq"])
        # Written while the socket had room: nothing waited in the queue.
        assert seqs == list(range(1, 51))


async def test_a_burst_through_asgi_overflows_the_queue(tmp_path: Path) -> None:
    # The ASGI path sends from a task: a burst larger than the queue lands first.
    async with serve(tmp_path, ws="websockets", ws_send_queue=4) as running:
        async with client(running.url) as ws:
            await subscribe(ws, TRADES)
            await running.publish(TRADES, 50)
            assert await closed_code(ws) == 4008


async def test_ticker_conflates_instead_of_closing(tmp_path: Path, ws_impl: str) -> None:
    async with serve(tmp_path, ws=ws_impl, ws_send_queue=4) as running:
        async with client(running.url, compression=None) as ws:
            await subscribe(ws, TICKER)
            ws.transport.pause_reading()  # backs the socket up: tickers wait, and conflate
            bus = running.services.bus
            assert isinstance(bus, MemoryBus)
            (listener,) = bus._subscribers[TICKER]
            pad, sent, backed_up = "x" * 65536, 0, 0
            while backed_up < 200:
                assert sent < 5000, "the socket never backed up"
                sent += 1
                await bus.publish(TICKER, orjson.dumps({"n": sent, "pad": pad}), T0 + sent)
                backed_up += bool(len(listener._queue))  # type: ignore[attr-defined]
                if sent % 20 == 0:
                    await asyncio.sleep(0)
            ws.transport.resume_reading()
            await send(ws, op="ping", id=2)
            seqs = []
            while (frame := await recv(ws))["type"] != "pong":
                seqs.append(frame["seq"])
            assert seqs[-1] == sent  # the latest value always arrives
            assert len(seqs) < sent and seqs == sorted(set(seqs))


async def test_ticker_burst_to_a_reading_client_arrives_whole(tmp_path: Path) -> None:
    async with serve(tmp_path, ws_send_queue=4) as running, client(running.url) as ws:
        await subscribe(ws, TICKER)
        await running.publish(TICKER, 50)
        await send(ws, op="ping", id=2)
        seqs = []
        while (frame := await recv(ws))["type"] != "pong":
            seqs.append(frame["seq"])
        assert seqs == list(range(1, 51))  # the socket had room: nothing to conflate


async def test_heartbeat_after_silence(tmp_path: Path, ws_impl: str) -> None:
    async with (
        serve(tmp_path, ws=ws_impl, ws_heartbeat_s=0.2) as running,
        client(running.url) as ws,
    ):
        frame = await recv(ws, timeout=2)
        assert frame["type"] == "heartbeat" and frame["time"] > T0


async def test_ping_pong(tmp_path: Path) -> None:
    async with serve(tmp_path) as running, client(running.url) as ws:
        await send(ws, op="ping", id=9)
        assert await recv(ws) == {"type": "pong", "id": 9}


async def test_shutdown_closes_streams_1001(tmp_path: Path, ws_impl: str) -> None:
    async with serve(tmp_path, ws=ws_impl) as running, client(running.url) as ws:
        await subscribe(ws, TRADES)
        running.services.closing.set()
        assert await closed_code(ws) == 1001
        async with client(running.url) as late:  # a client that arrives during shutdown
            assert await closed_code(late) == 1001


def _connections() -> float:
    value = REGISTRY.get_sample_value("cryptopulse_stream_connections")
    assert value is not None
    return value


async def test_disconnect_unsubscribes_from_the_bus(tmp_path: Path, ws_impl: str) -> None:
    async with serve(tmp_path, ws=ws_impl) as running:
        before = _connections()
        async with client(running.url) as ws:
            await subscribe(ws, TRADES, TICKER)
            assert _connections() == before + 1
        async with asyncio.timeout(3):
            while _connections() != before:
                await asyncio.sleep(0.01)
        bus = running.services.bus
        assert isinstance(bus, MemoryBus)
        # The memory bus has no public subscriber count; a leak would show here.
        assert all(name not in bus._subscribers for name in (TRADES, TICKER))


def _coroutines() -> int:
    # type(), not isinstance(): the heap may hold a weakref proxy to a dead object, whose
    # __class__ raises ReferenceError.
    return sum(1 for o in gc.get_objects() if type(o) is types.CoroutineType)


async def test_an_open_stream_holds_few_coroutines(tmp_path: Path) -> None:
    """The stream is dispatched ahead of the middleware stack and the router: each level
    of it kept a coroutine for the connection's life (26 in all), which every full garbage
    collection walks. Now the server's ASGI task, the app's dispatch, the session and its
    reader are all there is (~9, four of them uvicorn's and `websockets`')."""
    n = 20
    async with serve(tmp_path) as running, contextlib.AsyncExitStack() as stack:
        await asyncio.sleep(0.1)
        before = _coroutines()
        for _ in range(n):
            ws = await stack.enter_async_context(client(running.url))
            await subscribe(ws, TRADES)
        per_connection = (_coroutines() - before) / n
        assert per_connection <= 12, per_connection
        await running.services.pipeline.on_trade(trade("1", 100.0, T0))  # and it still works
        assert (await recv(ws))["data"]["trade_id"] == "1"


async def test_stream_under_a_root_path(tmp_path: Path) -> None:
    """Behind a proxy that strips a prefix (`--root-path /api`): uvicorn puts the prefix
    back in the scope's path, and the stream is found as Starlette's routing finds routes."""
    async with serve(tmp_path, root_path="/api") as running:
        async with client(running.url) as ws:
            await subscribe(ws, TRADES)
        with pytest.raises(InvalidStatus):
            async with client(running.url.replace("/v1/stream", "/v1/streams")):
                pass


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("trades:Coinbase:btc-usd", "trades:coinbase:BTC-USD"),
        ("trades:kraken:XBT-USD", "trades:kraken:BTC-USD"),
        ("ticker:eth-usdt", "ticker:ETH-USDT"),
        ("ticker:binance:ETH-USDT", "ticker:binance:ETH-USDT"),
        ("candles:BTC-USD:1m", "candles:BTC-USD:1m"),
        ("candles:coinbase:btc-usd:1h", "candles:coinbase:BTC-USD:1h"),
    ],
)
def test_channel_names_are_normalized(text: str, channel: str) -> None:
    assert normalize_channel(text) == channel


@pytest.mark.parametrize(
    "text",
    [
        "trades:BTC-USD",
        "candles:BTC-USD:2m",
        "candles:BTC-USD",
        "ticker:",
        "grades:x",
        "nope:x",
        "signals:",
    ],
)
def test_unknown_channels_are_refused(text: str) -> None:
    with pytest.raises(OpError) as caught:
        normalize_channel(text)
    assert caught.value.code == "unknown_channel"


# The send queue alone: the orderings a real socket cannot force deterministically.


def message(channel: str, seq: int) -> Message:
    return build_message(channel, seq, T0 + seq, orjson.dumps({"n": seq}))


def drain(queue: SendQueue) -> list[dict[str, Any]]:
    frames = []
    while queue:
        text = queue.pop()
        if text is not None:
            frames.append(orjson.loads(text))
    return frames


def test_queue_overflow_reports_once_and_drops_what_is_queued() -> None:
    overflows: list[None] = []
    queue = SendQueue(2, lambda: overflows.append(None))
    queue.start(queue.open(TRADES), Subscription([], None, None))
    for seq in range(1, 6):
        queue.deliver(message(TRADES, seq))
    assert len(overflows) == 1
    assert len(queue) == 0 and queue.stopped


def test_queue_conflates_tickers_to_the_latest() -> None:
    queue = SendQueue(2, lambda: pytest.fail("a ticker must not overflow"))
    queue.start(queue.open(TICKER), Subscription([], None, None))
    queue.start(queue.open(TRADES), Subscription([], None, None))
    queue.deliver(message(TICKER, 1))
    queue.deliver(message(TRADES, 1))
    for seq in range(2, 40):
        queue.deliver(message(TICKER, seq))
    assert [(f["channel"], f["seq"]) for f in drain(queue)] == [(TICKER, 39), (TRADES, 1)]


def test_queue_sends_replay_then_live_without_duplicates() -> None:
    queue = SendQueue(10, lambda: pytest.fail("no overflow expected"))
    channel = queue.open(TRADES)
    # Live messages that arrive while the bus answers the subscribe overlap its replay.
    queue.deliver(message(TRADES, 4))
    queue.deliver(message(TRADES, 5))
    queue.start(channel, Subscription([message(TRADES, s) for s in (3, 4)], None, None))
    queue.deliver(message(TRADES, 5))
    queue.deliver(message(TRADES, 6))
    assert [f["seq"] for f in drain(queue)] == [3, 4, 5, 6]


def test_queue_sends_gap_before_snapshot_and_drops_unsubscribed() -> None:
    queue = SendQueue(10, lambda: pytest.fail("no overflow expected"))
    queue.start(queue.open(TRADES), Subscription([], Gap(6, 20), message(TRADES, 30)))
    queue.deliver(message(TRADES, 31))
    assert [(f["type"], f.get("seq")) for f in drain(queue)] == [
        ("gap", None),
        ("snapshot", 30),
        ("data", 31),
    ]
    queue.deliver(message(TRADES, 32))
    queue.remove(TRADES)
    assert drain(queue) == []
