"""WebSocket fan-out: N clients on one channel at R msg/s, three servers side by side.

    python -m bench fanout [--clients 1000] [--rate 10] [--seconds 5] [--repeats 2]
                           [--compression deflate|none] [--slow 0.01] [--pad 120]

Servers (bench/_fanout_server.py), one at a time, pinned to CPU 1, each on uvloop:
**ours** (the app's ``/v1/stream`` with a key, published through the memory bus),
**broadcast** (raw `websockets` + ``broadcast()``: the ceiling), **send_json** (Starlette,
``send_json`` per client in a loop: the typical peer). The clients run in this process
pinned to CPU 0 (``os.sched_setaffinity``), all on one uvloop event loop with the
`websockets` client, offering permessage-deflate or not (``--compression``; browsers
always offer it).

Reported: messages delivered per second (all clients together) against what was sent
(clients × rate), publish → receive latency p50 and p99 (the publisher stamps
``time.time_ns()``; same machine clock), the server's RSS growth per connected idle
client (``/proc/<pid>/status`` VmRSS before the clients connect and once all are
subscribed, before the first measured second), and the server's CPU time (user + system,
``/proc/<pid>/stat``) over the measured seconds per frame delivered: the server's cost,
whoever (server or client) limits the delivered rate.

``--slow F``: each server is also run with a fraction F of its clients that stop reading
right after subscribing (their socket's reading is paused: TCP's window closes, then the
server's buffers fill). The second table gives the healthy clients' figures with and
without them, what became of the slow ones (after the measured seconds they read again:
closed with which code, or still open and how many frames they got) and the server's RSS
at the end of the measured seconds.

One client core bounds what can be measured: this 2-CPU machine cannot drive 1,000
clients × 1,000 msg/s (a million frames a second into one Python process), so the rate
is a parameter and the figures say what was run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

KINDS = ("ours", "broadcast", "send_json")
PATHS = {"ours": "/v1/stream", "broadcast": "/", "send_json": "/ws"}
# How long slow clients get, after the measured seconds, to read what the server kept.
_SLOW_READ_S = 5.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class _Outcome:
    """What a slow client saw once it read again."""

    frames: int = 0
    close_code: int | None = None  # None: still open when the read time ran out


@dataclass
class _Run:
    latencies: list[int] = field(default_factory=list)
    slow: list[_Outcome] = field(default_factory=list)


async def _client(
    url: str,
    key: str,
    kind: str,
    compression: Literal["deflate"] | None,
    ready: asyncio.Event,
    stop: asyncio.Event,
    run: _Run,
    slow: bool,
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if kind == "ours" else {}
    async with connect(
        url,
        additional_headers=headers,
        max_queue=None,
        open_timeout=60,
        compression=compression,
    ) as ws:
        if kind == "ours":
            sub = {"op": "subscribe", "id": 1, "channels": ["trades:coinbase:BTC-USD"]}
            await ws.send(orjson.dumps(sub).decode())
        if slow:
            await _slow_client(ws, ready, stop, run)
            return
        ready.set()
        sink = run.latencies
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


async def _slow_client(ws: Any, ready: asyncio.Event, stop: asyncio.Event, run: _Run) -> None:
    """Stop reading after subscribing; after the measured seconds, read what is left."""
    ws.transport.pause_reading()
    ready.set()
    await stop.wait()
    outcome = _Outcome()
    run.slow.append(outcome)
    ws.transport.resume_reading()
    try:
        async with asyncio.timeout(_SLOW_READ_S):
            async for _ in ws:
                outcome.frames += 1
    except TimeoutError:
        return
    except ConnectionClosed:
        pass
    outcome.close_code = ws.close_code


async def _drive(
    kind: str,
    port: int,
    key: str,
    clients: int,
    seconds: float,
    server_pid: int,
    compression: Literal["deflate"] | None,
    slow: int,
) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}{PATHS[kind]}"
    stop = asyncio.Event()
    run = _Run()
    readies = [asyncio.Event() for _ in range(clients)]
    # Slow clients spread evenly among the others.
    slow_ids = {i * clients // slow for i in range(slow)} if slow else set()
    rss0 = _rss_kb(server_pid)
    tasks: list[asyncio.Task[None]] = []
    slow_tasks: list[asyncio.Task[None]] = []
    for i in range(clients):  # connect in waves: a burst of handshakes is not the workload
        task = asyncio.create_task(
            _client(url, key, kind, compression, readies[i], stop, run, i in slow_ids)
        )
        (slow_tasks if i in slow_ids else tasks).append(task)
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    await asyncio.sleep(1.0)
    rss1 = _rss_kb(server_pid)
    run.latencies.clear()
    cpu0 = _cpu_s(server_pid)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    latencies = list(run.latencies)
    elapsed = time.perf_counter() - t0
    cpu = _cpu_s(server_pid) - cpu0
    rss2 = _rss_kb(server_pid)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if slow_tasks:
        await asyncio.wait(slow_tasks, timeout=_SLOW_READ_S + 5)
        for task in slow_tasks:
            task.cancel()
        await asyncio.gather(*slow_tasks, return_exceptions=True)
    latencies.sort()
    n = len(latencies)
    return {
        "delivered_per_s": n / elapsed,
        "p50_ms": latencies[n // 2] / 1e6 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] / 1e6 if n else float("nan"),
        "kb_per_conn": (rss1 - rss0) / clients,
        "cpu_us_per_frame": cpu * 1e6 / n if n else float("nan"),
        "rss_end_mb": rss2 / 1024,
        "slow": run.slow,
    }


def run_one(
    kind: str,
    clients: int,
    rate: float,
    seconds: float,
    port: int,
    compression: Literal["deflate"] | None = "deflate",
    slow: int = 0,
    pad: int = 120,
) -> dict[str, Any]:
    """Start server `kind`, drive it with `clients`, stop it; the figures of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key"
        server = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, "-m", "bench._fanout_server", kind]
            + [str(port), str(rate), str(key_file), str(Path(tmp) / "db.sqlite"), str(pad)],
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
            drive = _drive(kind, port, key, clients, seconds, server.pid, compression, slow)
            return uvloop.run(drive)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _outcomes(slow: list[_Outcome]) -> str:
    codes = collections.Counter("open" if o.close_code is None else str(o.close_code) for o in slow)
    frames = [o.frames for o in slow]
    closed = ", ".join(f"{n}× {code}" for code, n in sorted(codes.items()))
    return f"{closed} ({min(frames, default=0):,}–{max(frames, default=0):,} frames read)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--port", type=int, default=18941)
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    parser.add_argument("--slow", type=float, default=0.0, help="fraction of slow clients")
    parser.add_argument("--pad", type=int, default=120, help="payload padding, bytes")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})
    kinds = [k for k in args.kinds.split(",") if k]
    compression: Literal["deflate"] | None = "deflate" if args.compression == "deflate" else None
    slow = round(args.clients * args.slow)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    slow_runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for kind in kinds:
            common = (args.clients, args.rate, args.seconds, args.port, compression)
            runs[kind].append(run_one(kind, *common, pad=args.pad))
            if slow:
                slow_runs[kind].append(run_one(kind, *common, slow=slow, pad=args.pad))
    sent = args.clients * args.rate
    print(
        f"{args.clients} clients × {args.rate:g} msg/s (= {sent:,.0f} frames/s), "
        f"{args.seconds:g} s, {args.repeats} repetitions, compression {args.compression}, "
        f"pad {args.pad} B"
    )
    print(
        "| server | delivered frames/s (min–max) | of sent | p50 ms | p99 ms (min–max) "
        "| KB per idle connection | server CPU µs per frame | vs broadcast |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = runs.get("broadcast")
    ceiling = statistics.median(r["delivered_per_s"] for r in base) if base else float("nan")
    for kind, results in runs.items():
        d = [r["delivered_per_s"] for r in results]
        p99 = [r["p99_ms"] for r in results]
        med = statistics.median(d)
        print(
            f"| {kind} | {med:,.0f} ({min(d):,.0f}–{max(d):,.0f}) | {med / sent:.0%} "
            f"| {statistics.median(r['p50_ms'] for r in results):.1f} "
            f"| {statistics.median(p99):.1f} ({min(p99):.1f}–{max(p99):.1f}) "
            f"| {statistics.median(r['kb_per_conn'] for r in results):.1f} "
            f"| {statistics.median(r['cpu_us_per_frame'] for r in results):.2f} "
            f"| {med / ceiling:.2f}× |"
        )
    if slow:
        _print_slow(runs, slow_runs, args.clients - slow, slow, args.rate)
    return 0


def _print_slow(
    runs: dict[str, list[dict[str, Any]]],
    slow_runs: dict[str, list[dict[str, Any]]],
    healthy: int,
    slow: int,
    rate: float,
) -> None:
    print()
    print(f"With {slow} slow clients (stop reading after subscribing), {healthy} healthy:")
    print(
        "| server | healthy delivered/s of sent | healthy p99 ms (min–max) without → with slow "
        "| p99 change | slow clients, once they read again | server RSS MB at end, "
        "without → with |"
    )
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for kind, results in slow_runs.items():
        base = runs[kind]
        p99s_0 = [r["p99_ms"] for r in base]
        p99s_1 = [r["p99_ms"] for r in results]
        p99_0, p99_1 = statistics.median(p99s_0), statistics.median(p99s_1)
        delivered = statistics.median(r["delivered_per_s"] for r in results)
        outcomes = [o for r in results for o in r["slow"]]
        rss_0 = statistics.median(r["rss_end_mb"] for r in base)
        rss_1 = statistics.median(r["rss_end_mb"] for r in results)
        print(
            f"| {kind} | {delivered / (healthy * rate):.0%} "
            f"| {p99_0:.1f} ({min(p99s_0):.1f}–{max(p99s_0):.1f}) "
            f"→ {p99_1:.1f} ({min(p99s_1):.1f}–{max(p99s_1):.1f}) "
            f"| {p99_1 / p99_0 - 1:+.0%} | {_outcomes(outcomes)} "
            f"| {rss_0:.1f} → {rss_1:.1f} |"
        )
