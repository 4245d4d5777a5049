"""Soak: the mixed load of `bench/mixed.py` held steady for `--minutes`, the server's RSS
sampled every `--every` seconds. Is memory flat under a steady load?

    python -m bench soak [--minutes 10] [--every 5] [--warmup 30]
                         [--rate 5000] [--clients 2000] [--rest-rate 200] [--spread 100]

One server (``python -m bench.mixed serve``, pinned to CPU 1: the real app, embedded, trades
injected into its pipeline at `--rate`), the stream clients and wrk (pinned to CPU 0) for
the whole run. Reported: RSS (the server's process tree, /proc) at the start (after
`--warmup` seconds of load), at the end and its maximum; the slope of a least-squares
line through the samples after warm-up, over the whole run and over its second half (a
buffer filling up levels off; a leak does not); and per minute: RSS, trades injected per
second, stream lag p99 and frames delivered, so a drift shows where it starts. REST
requests/s and p99 are wrk's over the whole run.

A lag p99 that jumps in one minute needs a stall of some 0.5 s on one side (or a backlog
the client core drains slowly), so each minute also says which side stood still: the
longest wait of the server's event loop and of the load generator's (a 1 ms heartbeat on
each, `bench/_looplag.py`), the load generator's longest full garbage collection, and
the CPU the load generator and wrk used on their shared core. And two counters of the
server: trades its store writer dropped (its buffer is bounded) and the interpreter's
allocated memory blocks (`sys.getallocatedblocks`: Python objects, not C allocations).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench._looplag import FullCollections, LoopLag, longest_since
from bench._measure import (
    cpu_s,
    parse_wrk,
    rss_mb,
    start_wrk,
    unsorted_percentile,
    wrk_script,
)
from bench.mixed import (
    Clients,
    Server,
    Spec,
    add_load_arguments,
    longest_gc,
    raise_nofile,
    stream_channels,
)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (y per x); 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


@dataclass
class LoadSide:
    """The load generator's own state: its loop's heartbeat, its full collections, wrk."""

    lag: LoopLag
    collections: FullCollections
    wrk_pid: int

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far: this process's, wrk's."""
        return time.process_time(), cpu_s(self.wrk_pid)


@dataclass
class Window:
    """One minute of the run: where its counters started."""

    t: float
    cpu: float
    injected: int
    injected_at: float
    load_cpu: tuple[float, float]
    wall: float  # time.time() at its start: the reports' stall and GC times are wall times

    @classmethod
    def open(cls, server: Server, pid: int, load: LoadSide) -> Window:
        now = time.perf_counter()
        return cls(now, cpu_s(pid), *server.injected(), load.cpu(), time.time())

    def close(
        self, end_s: float, server: Server, clients: Clients, pid: int, load: LoadSide
    ) -> dict[str, float]:
        now = time.perf_counter()
        lags, received = clients.take()
        injected, at = server.injected()
        stats = server.stats()
        own, wrk = load.cpu()
        seconds = now - self.t
        return {
            "end_s": end_s,
            "rss_mb": rss_mb(pid),
            "injected_per_s": (injected - self.injected) / max(at - self.injected_at, 1e-9),
            "lag_p99_ms": unsorted_percentile(lags, 0.99),
            "frames_per_s": received / seconds,
            "cpu_per_s": (cpu_s(pid) - self.cpu) / seconds,
            "closed": float(clients.closed),
            "retained": float(stats["retained"]),
            "gc2_count": float(stats["gc2_count"]),
            "gc2_max_ms": longest_gc(stats, self.injected_at),
            "server_stall_ms": longest_since(stats["stalls"], self.wall),
            "load_stall_ms": longest_since(load.lag.stalls, self.wall),
            "load_gc2_ms": longest_since(load.collections.recent, self.wall),
            "writer_dropped": float(stats["writer_dropped"]),
            "blocks": float(stats["blocks"]),
            "load_cpu_per_s": (own - self.load_cpu[0]) / seconds,
            "wrk_cpu_per_s": (wrk - self.load_cpu[1]) / seconds,
        }


async def soak(args: argparse.Namespace) -> int:
    channels = stream_channels(args.spread)
    total_s = args.warmup + args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        spec = Spec(
            args.port,
            args.rate,
            args.spread,
            args.bus_history,
            loop_lag=True,
            compression=args.ws_compression,
        )
        server = Server(spec, Path(tmp))
        heartbeat: asyncio.Task[None] | None = None
        clients = Clients(f"ws://127.0.0.1:{args.port}/v1/stream", server.key, channels)
        try:
            await clients.start(args.clients)
            delay = args.connections * 1000 / args.rest_rate if args.rest_rate else 0.0
            script = wrk_script(args.rest_paths.split(","), delay, Path(tmp))
            base = f"http://127.0.0.1:{args.port}"
            wrk = start_wrk(base, server.key, total_s, args.connections, script)
            pid = server.proc.pid
            load = LoadSide(LoopLag(), FullCollections().install(), wrk.pid)
            heartbeat = asyncio.create_task(load.lag.heartbeat())
            clients.measuring = True
            samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
            minutes: list[dict[str, float]] = []
            window = Window.open(server, pid, load)
            t0 = window.t
            next_sample = t0
            while (now := time.perf_counter()) < t0 + total_s:
                if now >= next_sample:
                    samples.append((now - t0, rss_mb(pid)))
                    next_sample += args.every
                if now >= window.t + 60:
                    minutes.append(window.close(now - t0, server, clients, pid, load))
                    window = Window.open(server, pid, load)
                await asyncio.sleep(min(1.0, max(0.05, next_sample - time.perf_counter())))
            samples.append((time.perf_counter() - t0, rss_mb(pid)))
            if time.perf_counter() - window.t > 5:
                minutes.append(window.close(time.perf_counter() - t0, server, clients, pid, load))
            rest = parse_wrk((await asyncio.to_thread(wrk.communicate))[0])
            closed = dict(clients.close_codes)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            await clients.stop()
            server.stop()
    after = [(t, r) for t, r in samples if t >= args.warmup]
    half = [(t, r) for t, r in after if t >= args.warmup + args.minutes * 30]
    start_mb, end_mb = after[0][1], after[-1][1]
    print(
        f"soak: {args.minutes:g} min after {args.warmup:g} s warm-up; {args.rate:,.0f} trades/s "
        f"offered over {len(channels)} instruments, {args.clients} stream clients, REST "
        f"{args.rest_rate:g} req/s offered (wrk -c{args.connections}); RSS every {args.every:g} s; "
        f"bus_history {args.bus_history}; stream clients closed by the server: "
        f"{closed or 'none'}"
    )
    print(
        "| RSS start MB | RSS end MB | RSS max MB | slope MB/min (whole) | slope MB/min (2nd half) "
        "| REST req/s | REST p99 ms | non-2xx | socket errors |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {start_mb:,.0f} | {end_mb:,.0f} | {max(r for _, r in after):,.0f} "
        f"| {slope(after) * 60:+.2f} | {slope(half) * 60:+.2f} | {rest['rps']:,.0f} "
        f"| {rest['p99_ms']:.1f} | {rest['non_2xx']:.0f} | {rest['errors']:.0f} |"
    )
    print(
        "| minute ending at s | RSS MB | trades/s injected | stream frames/s | lag p99 ms "
        "| server CPU s/s | clients closed so far | messages in the bus's history "
        "| full GCs so far | longest full GC so far ms | trades the store writer dropped so far "
        "| Python memory blocks (millions) | server loop's longest wait ms "
        "| load generator: loop's longest wait ms | its longest full GC ms | its CPU s/s "
        "| wrk CPU s/s |"
    )
    print("|" + " ---: |" * 17)
    for m in minutes:
        print(
            f"| {m['end_s']:.0f} | {m['rss_mb']:,.0f} | {m['injected_per_s']:,.0f} "
            f"| {m['frames_per_s']:,.0f} | {m['lag_p99_ms']:.1f} | {m['cpu_per_s']:.2f} "
            f"| {m['closed']:.0f} | {m['retained']:,.0f} | {m['gc2_count']:.0f} "
            f"| {m['gc2_max_ms']:,.0f} | {m['writer_dropped']:,.0f} | {m['blocks'] / 1e6:.2f} "
            f"| {m['server_stall_ms']:,.0f} | {m['load_stall_ms']:,.0f} "
            f"| {m['load_gc2_ms']:,.0f} | {m['load_cpu_per_s']:.2f} | {m['wrk_cpu_per_s']:.2f} |"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    add_load_arguments(parser)
    parser.set_defaults(warmup=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--port", type=int, default=18981)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})
    raise_nofile(args.clients)
    return uvloop.run(soak(args))
