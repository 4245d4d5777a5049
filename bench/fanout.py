"""WebSocket fan-out: N clients on one channel at R msg/s, three servers side by side.

    python -m bench fanout [--clients 1000] [--rate 10] [--seconds 5] [--repeats 2]

Servers (bench/_fanout_server.py), one at a time, pinned to CPU 1: **ours** (the app's
``/v1/stream`` with a key, published through the memory bus), **broadcast** (raw
`websockets` + ``broadcast()``: the ceiling), **send_json** (Starlette, ``send_json``
per client in a loop: the typical peer). The clients run in this process pinned to
CPU 0 (``os.sched_setaffinity``), all on one event loop with the `websockets` client.

Reported: messages delivered per second (all clients together) against what was sent
(clients × rate), publish → receive latency p50 and p99 (the publisher stamps
``time.time_ns()``; same machine clock), and the server's RSS growth per connected idle
client (``/proc/<pid>/status`` VmRSS before the clients connect and once all are
subscribed, before the first measured second).

One client core bounds what can be measured: this 2-CPU machine cannot drive 1,000
clients × 1,000 msg/s (a million frames a second into one Python process), so the rate
is a parameter and the figures say what was run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

KINDS = ("ours", "broadcast", "send_json")
PATHS = {"ours": "/v1/stream", "broadcast": "/", "send_json": "/ws"}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _client(
    url: str, key: str, kind: str, ready: asyncio.Event, stop: asyncio.Event, sink: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if kind == "ours" else {}
    async with connect(url, additional_headers=headers, max_queue=None, open_timeout=60) as ws:
        if kind == "ours":
            sub = {"op": "subscribe", "id": 1, "channels": ["trades:coinbase:BTC-USD"]}
            await ws.send(orjson.dumps(sub).decode())
        ready.set()
        async for raw in ws:
            now = time.time_ns()
            msg = orjson.loads(raw)
            if kind == "ours":
                if msg.get("type") != "data":
                    continue
                msg = msg["data"]
            if stop.is_set():
                return
            sink.append(now - msg["t"])


async def _drive(
    kind: str, port: int, key: str, clients: int, seconds: float, server_pid: int
) -> dict[str, float]:
    url = f"ws://127.0.0.1:{port}{PATHS[kind]}"
    stop = asyncio.Event()
    latencies: list[int] = []
    warm: list[int] = []
    readies = [asyncio.Event() for _ in range(clients)]
    rss0 = _rss_kb(server_pid)
    tasks = []
    for i in range(clients):  # connect in waves: a burst of handshakes is not the workload
        tasks.append(asyncio.create_task(_client(url, key, kind, readies[i], stop, warm)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    await asyncio.sleep(1.0)
    rss1 = _rss_kb(server_pid)
    warm.clear()
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    latencies = list(warm)
    elapsed = time.perf_counter() - t0
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    n = len(latencies)
    return {
        "delivered_per_s": n / elapsed,
        "p50_ms": latencies[n // 2] / 1e6 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] / 1e6 if n else float("nan"),
        "kb_per_conn": (rss1 - rss0) / clients,
    }


def run_one(kind: str, clients: int, rate: float, seconds: float, port: int) -> dict[str, float]:
    """Start server `kind`, drive it with `clients`, stop it; the figures of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key"
        server = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, "-m", "bench._fanout_server", kind]
            + [str(port), str(rate), str(key_file), str(Path(tmp) / "db.sqlite")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                if key_file.exists() and key_file.read_text():
                    break
                time.sleep(0.1)
            time.sleep(1.0)  # the key is written just before the server binds
            key = key_file.read_text()
            return asyncio.run(_drive(kind, port, key, clients, seconds, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--port", type=int, default=18941)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})
    kinds = [k for k in args.kinds.split(",") if k]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for kind in kinds:
            runs[kind].append(run_one(kind, args.clients, args.rate, args.seconds, args.port))
    sent = args.clients * args.rate
    print(
        f"{args.clients} clients × {args.rate:g} msg/s (= {sent:,.0f} frames/s), "
        f"{args.seconds:g} s, {args.repeats} repetitions"
    )
    print(
        "| server | delivered frames/s (min–max) | of sent | p50 ms | p99 ms (min–max) "
        "| KB per idle connection | vs broadcast |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    ceiling = statistics.median(r["delivered_per_s"] for r in runs.get("broadcast", [{}]) or [{}])
    for kind, results in runs.items():
        d = [r["delivered_per_s"] for r in results]
        p99 = [r["p99_ms"] for r in results]
        med = statistics.median(d)
        print(
            f"| {kind} | {med:,.0f} ({min(d):,.0f}–{max(d):,.0f}) | {med / sent:.0%} "
            f"| {statistics.median(r['p50_ms'] for r in results):.1f} "
            f"| {statistics.median(p99):.1f} ({min(p99):.1f}–{max(p99):.1f}) "
            f"| {statistics.median(r['kb_per_conn'] for r in results):.1f} "
            f"| {med / ceiling:.2f}× |"
        )
    return 0
