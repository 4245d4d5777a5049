"""Fuzz the stream's message parser: random bytes and random JSON only ever give an op or an
`OpError` (an `error` frame), never another exception that would end the connection.

The live half sends the same random frames over a real socket (uvicorn on 127.0.0.1): the
fuzzed connection stays open and answers a ping after every frame, and another client's
stream receives every message, in order, meanwhile."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from authkit import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cryptopulse.api import create_app
from cryptopulse.api._stream_ops import Auth, OpError, Ping, Subscribe, Unsubscribe, parse_op
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
OPS = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "auth", "x"])},
    optional={"id": JSON, "channels": JSON, "resume": JSON, "token": JSON},
)


def check(raw: str | bytes) -> None:
    try:
        op = parse_op(raw)
    except OpError as exc:
        frame = orjson.loads(exc.frame())
        assert frame["type"] == "error" and isinstance(frame["code"], str)
        return
    assert isinstance(op, Subscribe | Unsubscribe | Ping | Auth)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@settings(max_examples=500)
@given(JSON)
def test_random_json(value: object) -> None:
    check(orjson.dumps(value))


@settings(max_examples=1000)
@given(OPS)
def test_random_ops(value: dict[str, object]) -> None:
    check(orjson.dumps(value))


# --- live: random frames over a real socket ---------------------------------------------

VICTIM = "trades:binance:ETH-USDT"
# Valid names mixed into the ops, so that some random subscribes succeed (the victim's too).
CHANNELS = st.lists(
    st.sampled_from([VICTIM, "ticker:BTC-USD", "candles:BTC-USD:1m", "grades"])
    | st.text(max_size=20),
    max_size=4,
)
LIVE_OPS = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "auth", "x"])},
    optional={"id": JSON, "channels": CHANNELS, "resume": JSON, "token": JSON},
)
_REPLIES = {"error", "pong", "subscribed", "unsubscribed", "snapshot", "data", "gap", "heartbeat"}
LIVE = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


class LiveServer:
    """The real app under uvicorn in a thread with its own loop (hypothesis tests are sync)."""

    def __init__(self, tmp: Path) -> None:
        plans = {"fuzz": {"ws_messages_per_s": 10**6, "subscriptions": 1000}}
        self.app = create_app(make_settings(tmp, plans=plans), lambda s: Services.create(s, []))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True
        )
        self.url = ""
        self.key = ""
        self.published = 0

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.url = f"ws://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/v1/stream"
        access = self.app.state.services.access
        new = self.run(
            create_key(
                access.db,
                account="fuzzer",
                name="fuzz",
                scopes=["market:read", "signals:read"],
                plan="fuzz",
                plans=set(access.plans),
                actor="test",
            )
        )
        self.key = new.key

    def publish(self) -> None:
        """One message on the victim's channel; its payload is its number."""
        self.published += 1
        bus = self.app.state.services.bus
        self.run(bus.publish(VICTIM, orjson.dumps({"n": self.published}), self.published))

    def connect(self) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.key}"}
        return connect(self.url, additional_headers=headers, open_timeout=5, close_timeout=2)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.loop.close()


class Victim(threading.Thread):
    """A well-behaved client subscribed to VICTIM, recording every data frame's number."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.numbers: list[int] = []
        self.seqs: list[int] = []
        self.other: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                frame = orjson.loads(self.ws.recv(timeout=0.2))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if frame["type"] == "data" and frame["channel"] == VICTIM:
                self.numbers.append(frame["data"]["n"])
                self.seqs.append(frame["seq"])
            elif frame["type"] != "heartbeat":
                self.other.append(frame)


class Fuzzer:
    """Sends one frame, then a ping, and reads until that ping's pong: proof the handler
    took the frame and is still serving this connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count()
        self.frames = 0

    def send(self, frame: str | bytes) -> None:
        self.ws.send(frame)
        self.frames += 1
        ping = f"fuzz-{next(self.ids)}"
        self.ws.send(orjson.dumps({"op": "ping", "id": ping}).decode())
        deadline = time.monotonic() + 5
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no pong: the connection stopped serving"
            reply = orjson.loads(self.ws.recv(timeout=remaining))
            if reply == {"type": "pong", "id": ping}:
                return
            # A random op may be a ping of its own, or a subscribe to a real channel.
            assert reply["type"] in _REPLIES, reply


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_random_frames_over_a_socket_never_disturb_another_client(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="cryptopulse")
    with live.connect() as victim_ws, live.connect() as fuzz_ws:
        victim_ws.send(orjson.dumps({"op": "subscribe", "id": 1, "channels": [VICTIM]}).decode())
        assert orjson.loads(victim_ws.recv(timeout=5))["type"] == "subscribed"
        victim = Victim(victim_ws)
        victim.start()
        fuzzer = Fuzzer(fuzz_ws)
        first = live.published

        @LIVE
        @given(st.binary(max_size=200))
        def random_bytes(raw: bytes) -> None:
            fuzzer.send(raw)
            live.publish()

        @LIVE
        @given(st.text(max_size=200))
        def random_text(text: str) -> None:
            fuzzer.send(text)
            live.publish()

        @LIVE
        @given(JSON)
        def random_json(value: object) -> None:
            fuzzer.send(orjson.dumps(value).decode())
            live.publish()

        @LIVE
        @given(LIVE_OPS)
        def random_ops(value: dict[str, object]) -> None:
            fuzzer.send(orjson.dumps(value))  # as a binary frame
            live.publish()

        try:
            for fuzz in (random_bytes, random_text, random_json, random_ops):
                fuzz()
            deadline = time.monotonic() + 5
            while len(victim.numbers) < live.published - first and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            victim.stopping.set()
            victim.join(5)
    expected = list(range(first + 1, live.published + 1))
    assert fuzzer.frames >= 400
    assert victim.numbers == expected, "the other client missed or reordered messages"
    assert victim.seqs == sorted(victim.seqs) and len(set(victim.seqs)) == len(victim.seqs)
    assert victim.other == []
    assert [r.getMessage() for r in caplog.records if r.name.startswith("cryptopulse")] == []
