"""Heartbeats keep a quiet stream open; a server that stops answering (SIGSTOP: the socket
stays open, nothing arrives) is pinged, then dropped and reconnected to once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from serve import first_key, free_port, start, stop, wait_ready

from cryptopulse.client import AsyncClient, StreamMessage


async def test_heartbeats_keep_it_open_and_silence_reconnects(tmp_path: Path) -> None:
    db, port = tmp_path / "s.db", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port, CRYPTOPULSE_WS_HEARTBEAT_S="0.3")
    await asyncio.to_thread(wait_ready, base, proc)
    client = AsyncClient(base, first_key(db))
    # A valid instrument nobody publishes: only heartbeats arrive on this connection.
    stream = client.stream(["trades:coinbase:XRP-USD", "trades:sim:BTC-USD"], idle_timeout_s=3.0,
                           backoff_s=0.05, max_backoff_s=0.3)  # fmt: skip
    got: list[StreamMessage] = []

    async def consume() -> None:
        async for message in stream:
            got.append(message)

    task = asyncio.create_task(consume())
    try:
        await asyncio.sleep(4)
        # Heartbeats every 0.3 s beat the 3 s idle timeout (generous: a loaded CI machine
        # can stall the server's loop for a second).
        assert stream.reconnects == 0
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(8)  # 3 s silent, a ping, 3 s more, a 1 s close: dropped
        assert stream.reconnects >= 1
        os.kill(proc.pid, signal.SIGCONT)
        before = len(got)
        for _ in range(100):
            if len(got) > before:
                break
            await asyncio.sleep(0.1)
        assert len(got) > before, "no data after the server came back"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await asyncio.to_thread(stop, proc)
