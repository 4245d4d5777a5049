"""The real `cryptopulse serve` process: simulator data, readiness, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, **extra: str):  # type: ignore[no-untyped-def]
    port = free_port()
    db = tmp_path / "serve.db"
    env = {
        **os.environ,
        "CRYPTOPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        # unreachable live endpoints: auto mode must fall back to the simulator
        "CRYPTOPULSE_COINBASE_WS_URL": "ws://127.0.0.1:9/",
        "CRYPTOPULSE_BINANCE_WS_URL": "ws://127.0.0.1:9",
        "CRYPTOPULSE_KRAKEN_WS_URL": "ws://127.0.0.1:9/",
        "CRYPTOPULSE_LIVE_CONNECT_TIMEOUT_S": "1",
        "CRYPTOPULSE_INSTRUMENTS": "coinbase:BTC-USD,binance:ETH-USDT,kraken:SOL-USD",
        **extra,
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "cryptopulse"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield f"127.0.0.1:{port}", proc, db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from _serve(tmp_path)


def wait_ready(base: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "exited"
        try:
            response = httpx.get(f"http://{base}/readyz", timeout=1.0)
            if response.status_code == 200:
                body: dict[str, object] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in time")


def test_offline_serve_falls_back_to_labelled_simulator_and_stops_cleanly(served) -> None:  # type: ignore[no-untyped-def]
    base, proc, db = served
    ready = wait_ready(base, proc)
    assert ready["mode"] == "simulated"
    # First start with an empty store: an admin key, next to the database, mode 0600.
    key_file = db.parent / "first-key.txt"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"http://{base}/v1/tickers").status_code == 401
    feeds = {f["name"]: f for f in ready["feeds"]}  # type: ignore[attr-defined]
    assert feeds["simulator"]["connected"] is True
    assert httpx.get(f"http://{base}/docs").status_code == 200
    # The GC policy runs in a serving process: the startup heap is frozen (processes/_gc.py).
    metrics = httpx.get(f"http://{base}/metrics").text
    frozen = [line for line in metrics.splitlines() if line.startswith("cryptopulse_gc_frozen")]
    assert frozen and float(frozen[0].split()[-1]) > 100_000, frozen

    deadline = time.monotonic() + 20
    trades: list[dict[str, object]] = []
    while not trades and time.monotonic() < deadline:
        body = httpx.get(f"http://{base}/v1/trades/sim:BTC-USD", headers=auth).json()
        trades = body.get("data", [])
        time.sleep(0.3)
    assert trades, "the simulator produced no trades"
    assert body["source"] == "simulated"
    ticker = httpx.get(f"http://{base}/v1/tickers/BTC-USD", headers=auth).json()
    assert ticker["source"] == "simulated" and ticker["last"] > 0

    async def stream_then_sigterm() -> int | None:
        async with connect(f"ws://{base}/v1/stream", additional_headers=auth) as ws:
            # The client offered permessage-deflate; by default the server refuses it.
            assert ws.request is not None and ws.response is not None
            assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
            assert ws.response.headers.get("Sec-WebSocket-Extensions", "") == ""
            await ws.send(
                json.dumps({"op": "subscribe", "id": 1, "channels": ["candles:sim:BTC-USD:1m"]})
            )
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
            proc.send_signal(signal.SIGTERM)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert asyncio.run(stream_then_sigterm()) == 1001
    # uvicorn re-raises the signal once it has shut down cleanly
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    output = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in output and "SIMULATED" in output
    assert '"GET /v1/tickers/BTC-USD HTTP/1.1"' not in output  # no access log by default
    assert output.count(key) == 1  # printed once, on the console, never logged again
    # every candle the process had, open ones included, is in the store after it exits
    with sqlite3.connect(db) as conn:
        counts = dict(
            conn.execute(
                "select interval, count(*) from candles where instrument='sim:BTC-USD' group by 1"
            ).fetchall()
        )
        stored = conn.execute("select count(*) from trades").fetchone()[0]
    assert set(counts) == {"1m", "5m", "15m", "1h", "4h", "1d"}
    assert stored >= len(trades)


def test_opt_in_compression_and_access_log(tmp_path: Path) -> None:
    """CRYPTOPULSE_WS_COMPRESSION=true: a client offering deflate gets compressed frames;
    CRYPTOPULSE_ACCESS_LOG=true: a line per request (both off by default)."""
    served = _serve(tmp_path, CRYPTOPULSE_WS_COMPRESSION="true", CRYPTOPULSE_ACCESS_LOG="true")
    base, proc, db = next(served)
    try:
        wait_ready(base, proc)
        auth = {"Authorization": f"Bearer {(db.parent / 'first-key.txt').read_text().strip()}"}

        async def negotiate() -> tuple[str | None, str]:
            async with connect(f"ws://{base}/v1/stream", additional_headers=auth) as ws:
                assert ws.response is not None
                offered = ws.request.headers.get("Sec-WebSocket-Extensions") if ws.request else None
                subscribe = {"op": "subscribe", "id": 1, "channels": ["ticker:sim:BTC-USD"]}
                await ws.send(json.dumps(subscribe))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["type"] == "subscribed", reply
                return offered, ws.response.headers.get("Sec-WebSocket-Extensions", "")

        offered, accepted = asyncio.run(negotiate())
        assert offered is not None and "permessage-deflate" in offered
        assert accepted.startswith("permessage-deflate"), accepted
        # A route whose answer does not wait for market data (a ticker 404s until the
        # simulator's first trade).
        assert httpx.get(f"http://{base}/v1/me", headers=auth).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        output = proc.stdout.read() if proc.stdout else ""
        assert '"GET /v1/me HTTP/1.1" 200' in output, output[-3000:]
    finally:
        served.close()
