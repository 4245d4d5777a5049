"""Mixed load on one server: trades ingested at a steady rate + N WebSocket clients + REST
load from wrk, against each part alone, in one invocation.

    python -m bench mixed [--rate 5000] [--clients 2000] [--rest-rate 200] [--seconds 10]
                          [--repeats 2] [--spread 100]

The server (``python -m bench.mixed serve ...``, pinned to CPU 1) is the real app in its
embedded deployment (SQLite store with its batched writer, memory bus, ``/v1/stream``,
auth and rate limits on), simulator off, with no sources: a task in the server injects
trades into the app's own ingest path (``Pipeline.on_trade``, as a source does) at
`--rate` trades/s, in batches every 10 ms, yielding to the event loop between batches as a
source does between frames. The trades are the real captures' (bench/_captures.py, parsed
by our parsers once at startup), each stamped with the wall-clock time it was due at the
rate as its exchange time (a stall of the server before injecting counts as lag, as it
would for a live feed) and the time it was injected as its receipt time, and spread over
`--spread` copies of each of the captures' 14 instruments (``coinbase:SKL3-USD``...):
5,000 trades/s on 14 instruments would put ~350 messages/s on every channel, so no client
core could follow 2,000 subscribers; a deployment ingesting 5,000 trades/s covers hundreds
of instruments anyway.

The load generators run on CPU 0: the clients in this process (one event loop, the
`websockets` client, uvloop; client i subscribes to ``trades:`` of instrument i mod the
instruments) and wrk (``-t1``, `--connections` connections cycling over
``/v1/tickers/coinbase:BTC-USD`` and ``/v1/candles/coinbase:BTC-USD?limit=100``, each
connection pausing so that the offered rate is about `--rest-rate`; the server seeds 200
closed 1m candles for them at startup).

Parts, each on a fresh server, interleaved per repetition: **ingest alone** (the rate, no
clients, no REST), **REST alone** (no trades), **stream alone** (trades + clients), **mixed**
(all three). Reported: trades/s actually injected, REST requests/s and p99 (wrk's
latency distribution), stream lag p50/p99 (the client's clock at receipt − the trade's
exchange `time`, when the trade was due: ingest → pipeline → bus → send queue → socket →
client; the same machine clock, whole milliseconds), frames delivered per second, the
server's CPU seconds per wall second (its process tree, /proc) and the load generator's
(this process and wrk, on CPU 0: a busy client core would show up as latency). With
``--loop-lag``, how often per second the server's loop woke ≥ 10 ms late
(bench/_looplag.py). The server refuses permessage-deflate, as `cryptopulse serve` does by
default; ``--ws-compression`` makes it accept what the clients (`websockets`) offer.

``kill -USR1`` a running server writes ``census.txt`` to its folder: what a full collection
of the heap made since startup (what the GC policy's walks) took, its tracked objects by
type, what holds the most numerous ones, the referents the collector visits per kind of
holder, what one full collection of them all took, and the unreachable objects it found,
by type. A census unfreezes the whole heap to see it and
freezes it all again after (CPython has no partial freeze), so the GC policy's later full
collections skip what existed at the census: take it once, at the end of a run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench._looplag import FullCollections, LoopLag, longest_since
from bench._measure import (
    app_server,
    cpu_s,
    parse_wrk,
    percentile,
    rss_mb,
    spread,
    start_wrk,
    wrk_script,
)

REST_PATHS = ("/v1/tickers/coinbase:BTC-USD", "/v1/candles/coinbase:BTC-USD?limit=100")
PARTS = ("ingest", "rest", "stream", "mixed")
_TICK_S = 0.01


# --- server side -----------------------------------------------------------------------


def templates(spread_copies: int) -> tuple[list[tuple[str, float, float, str]], list[str]]:
    """The captures' trades as (instrument, price, size, side), and every instrument copy.

    Copy k of ``exchange:BASE-QUOTE`` is ``exchange:BASEk-QUOTE``; trade n of the cycle
    goes to copy (n // len(trades)) % `spread_copies`."""
    from bench._captures import laps, load_trade_frames
    from bench.ingest import _parsers
    from cryptopulse.domain.models import Trade

    parsers = _parsers()
    trades: list[tuple[str, float, float, str]] = []
    for frame in laps(load_trade_frames(), 1):
        for event in parsers[frame.exchange](frame.raw, frame.received_ms):
            if isinstance(event, Trade):
                trades.append((event.instrument, event.price, event.size, event.side))
    names = sorted({t[0] for t in trades})
    return trades, [copy_name(name, k) for k in range(spread_copies) for name in names]


def copy_name(instrument: str, k: int) -> str:
    exchange, pair = instrument.split(":")
    base, quote = pair.split("-")
    return f"{exchange}:{base}{k}-{quote}"


async def _inject(services: Any, rate: float, spread_copies: int, stats: dict[str, int]) -> None:
    """`rate` trades a second into the pipeline, stamped now, until cancelled."""
    from cryptopulse.domain.models import Trade

    trades, names = templates(spread_copies)
    for name in names:
        services.market.note_instrument(name, "replay")
    copies = {(t[0], k): copy_name(t[0], k) for t in trades for k in range(spread_copies)}
    on_trade = services.pipeline.on_trade
    start = time.perf_counter()
    wall_ms = time.time() * 1000
    n = 0
    while True:
        due = int((time.perf_counter() - start) * rate)
        while n < due:
            batch_end = min(due, n + 50)  # a source hands over a frame's trades, then yields
            now = int(time.time() * 1000)
            while n < batch_end:
                instrument, price, size, side = trades[n % len(trades)]
                name = copies[instrument, (n // len(trades)) % spread_copies]
                # Exchange time: when the trade was due (a stall before injection is lag,
                # as it would be for a live feed); receipt time: now.
                happened = int(wall_ms + n * 1000 / rate)
                trade = Trade(name, str(n), price, size, side, happened, now)  # type: ignore[arg-type]
                await on_trade(trade)
                n += 1
            stats["injected"] = n
            await asyncio.sleep(0)
        await asyncio.sleep(_TICK_S)


@dataclass(frozen=True)
class Spec:
    """What a `bench.mixed serve` process runs: both sides of its command line. Stream
    compression reaches it as CRYPTOPULSE_WS_COMPRESSION, read by its Settings."""

    port: int
    rate: float  # trades/s injected (0: none)
    spread_copies: int
    history: int = 1000  # the bus_history setting
    loop_lag: bool = False
    compression: bool = False

    def argv(self, folder: Path) -> list[str]:
        numbers = (self.port, self.rate, self.spread_copies, self.history, int(self.loop_lag))
        return [str(folder), *map(str, numbers)]

    @classmethod
    def parse(cls, argv: Sequence[str]) -> tuple[Spec, Path]:
        folder, port, rate, copies, history, loop_lag = argv
        spec = cls(int(port), float(rate), int(copies), int(history), loop_lag == "1")
        return spec, Path(folder)


async def serve(spec: Spec, folder: Path) -> None:
    from bench._rest_server import _UNLIMITED, _seed
    from cryptopulse.api import create_app
    from cryptopulse.runtime import Services
    from cryptopulse.settings import Settings

    port, rate, spread_copies = spec.port, spec.rate, spec.spread_copies
    plan = dict(_UNLIMITED, ws_connections=100_000, subscriptions=10)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        source="sim",
        bootstrap_key=False,
        plans={"bench": plan},
        bus_history=spec.history,
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    stats = {"injected": 0}
    full_gc = FullCollections().install()
    lag = LoopLag() if spec.loop_lag else None
    # From the loop, not a bare signal handler, which could run inside a collection.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, census, folder / "census.txt")
    async with app.router.lifespan_context(app):
        key = await _seed(app)
        server = app_server(
            app, port, ws_max_size=settings.ws_max_frame_bytes, ws_ping_interval=None, backlog=4096
        )
        tasks = [asyncio.create_task(server.serve())]
        while not server.started:
            await asyncio.sleep(0.05)
        (folder / "key").write_text(key)
        if rate > 0:
            tasks.append(
                asyncio.create_task(_inject(app.state.services, rate, spread_copies, stats))
            )

        async def report() -> None:
            out = folder / "stats.json"
            writer = app.state.services.writer
            while True:
                channels = getattr(app.state.services.bus, "_channels", {})
                retained = sum(len(c.history) for c in tuple(channels.values()))
                figures = {
                    "injected": stats["injected"],
                    "t": time.time(),
                    "retained": retained,
                    "gc2_count": full_gc.count,
                    "gc2_max_ms": full_gc.max_ms,
                    "gc2_total_ms": full_gc.total_ms,
                    "gc2_recent": list(full_gc.recent),
                    "late_wakeups": lag.late if lag is not None else 0,
                    "stalls": list(lag.stalls) if lag is not None else [],
                    # The store writer's backlog (read from this file by hand: a point
                    # sample) and drops, and the interpreter's live memory blocks.
                    "writer_pending": writer.pending,
                    "writer_dropped": writer.dropped_trades,
                    "blocks": sys.getallocatedblocks(),
                }
                # In a thread: a disk that stalls (seen: 154 ms) must not stall the loop.
                await asyncio.to_thread(_write_whole, out, orjson.dumps(figures))
                await asyncio.sleep(0.5)

        tasks.append(asyncio.create_task(report()))
        if lag is not None:
            tasks.append(asyncio.create_task(lag.heartbeat()))
        await tasks[0]
        for task in tasks[1:]:
            task.cancel()


def _write_whole(out: Path, data: bytes) -> None:
    """`data` into `out`, replaced whole: a reader never sees half of it."""
    part = out.with_suffix(".part")
    part.write_bytes(data)
    part.replace(out)


def census(out: Path) -> None:
    """The tracked objects by type, frozen ones included, and what a full collection of
    them all costs (`kill -USR1` the server; the loop stands still meanwhile). A server
    started with PYTHONTRACEMALLOC=1 also dumps a `tracemalloc` snapshot next to it
    (`census-<unix time>.tracemalloc`: two of them diff what was allocated between)."""
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(
            str(out.with_name(f"census-{time.time():.0f}.tracemalloc"))
        )
    # First what the policy's full collection walks and costs: the heap made since startup.
    started = time.perf_counter()
    gc.collect()
    runtime_ms = (time.perf_counter() - started) * 1000
    runtime = {id(o) for o in gc.get_objects()}
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    objects = gc.get_objects()
    by_type = Counter(type(o).__qualname__ for o in objects)
    total = len(objects)
    held_by, visits = _held_by(objects, {name for name, _ in by_type.most_common(12)}, runtime)
    del objects, runtime
    # What the collection finds unreachable (the cycles that only a full collection frees):
    # kept in gc.garbage for a look at their types, then let go.
    gc.set_debug(gc.DEBUG_SAVEALL)
    started = time.perf_counter()
    unreachable = gc.collect()
    ms = (time.perf_counter() - started) * 1000
    gc.set_debug(0)
    garbage = Counter(type(o).__qualname__ for o in gc.garbage)
    gc.garbage.clear()
    gc.collect()  # now without saving them
    if frozen:
        gc.freeze()
    lines = [
        f"runtime heap {total - frozen}: its full collection took {runtime_ms:.0f} ms",
        f"tracked {total} (frozen {frozen}); a full collection took {ms:.0f} ms "
        f"and found {unreachable} unreachable",
    ]
    lines += [f"{n:>10} {name}" for name, n in by_type.most_common(40)]
    lines += [f"{n:>10} {name}" for name, n in held_by.most_common(40)]
    lines += [f"referents of the runtime heap's objects: {visits.total()}, by holder:"]
    lines += [f"{n:>10} {name}" for name, n in visits.most_common(25)]
    lines += ["unreachable by type:"]
    lines += [f"{n:>10} {name}" for name, n in garbage.most_common(25)]
    out.write_text("\n".join(lines) + "\n")


def _held_by(
    objects: list[Any], names: set[str], runtime: set[int]
) -> tuple[Counter[str], Counter[str]]:
    """Who holds the objects of the types in `names`, all of them (one pass over every
    tracked object's referents, as the collector walks them); a dict holder is named with
    its own holder ("dict <- IndicatorSet": an instance's attributes), found in a first
    pass. And how many referents the collector visits in each kind of holder of the
    `runtime` heap (a set of 10,000 strings is one tracked object and 10,000 visits)."""
    owner: dict[int, str] = {}
    for holder in objects:
        if not isinstance(holder, dict):
            for ref in gc.get_referents(holder):
                if type(ref) is dict:
                    owner[id(ref)] = type(holder).__qualname__
    held_by: Counter[str] = Counter()
    visits: Counter[str] = Counter()
    for holder in objects:
        label = type(holder).__qualname__
        if type(holder) is dict:
            label = f"dict <- {owner.get(id(holder), '?')}"
        refs = gc.get_referents(holder)
        if id(holder) in runtime:
            visits[label] += len(refs)
        for ref in refs:
            name = type(ref).__qualname__
            if name in names and gc.is_tracked(ref):
                held_by[f"{name} <- {label}"] += 1
    return held_by, visits


# --- load side -------------------------------------------------------------------------


def longest_gc(stats: dict[str, Any], since: float) -> float:
    """The longest full collection the server reported that ended after `since` (its
    wall clock): the measured window's, not the startup collection's."""
    return longest_since(stats["gc2_recent"], since)


class Server:
    """A `bench.mixed serve` process pinned to CPU 1, with its key once it listens."""

    def __init__(self, spec: Spec, folder: Path) -> None:
        self.port, self.folder = spec.port, folder
        env = dict(os.environ, CRYPTOPULSE_WS_COMPRESSION=str(spec.compression).lower())
        self.proc = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, "-m", "bench.mixed", "serve"]
            + spec.argv(folder),
            stdout=subprocess.DEVNULL,
            stderr=(folder / "server.log").open("wb"),
            env=env,
        )
        key_file = folder / "key"
        for _ in range(1200):
            if key_file.exists() and key_file.read_text():
                self.key = key_file.read_text()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the mixed server exited: {self.log_tail()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the mixed server did not start within 120 s")

    def log_tail(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-3000:]

    def stats(self) -> dict[str, Any]:
        """The server's counters: trades injected, when, messages retained by the bus."""
        return orjson.loads((self.folder / "stats.json").read_bytes())  # type: ignore[no-any-return]

    def injected(self) -> tuple[int, float]:
        stats = self.stats()
        return int(stats["injected"]), float(stats["t"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Clients:
    """N stream clients; each lag (ms) is kept while `measuring` is set (in an array of
    doubles: numpy reads it without a copy, `bench/soak.py`'s per-minute p99)."""

    url: str
    key: str
    channels: list[str]
    lags: array[float] = field(default_factory=lambda: array("d"))
    received: int = 0
    closed: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)
    measuring: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _client(self, channel: str, ready: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with connect(
                self.url,
                additional_headers=headers,
                max_queue=None,
                open_timeout=120,
                ping_interval=None,  # the stream has its own heartbeats; no client-side closes
            ) as ws:
                await ws.send(orjson.dumps({"op": "subscribe", "id": 1, "channels": [channel]}))
                async for raw in ws:
                    now_ms = time.time_ns() / 1e6
                    msg = orjson.loads(raw)
                    if msg.get("type") == "subscribed":
                        ready.set()
                    elif msg.get("type") == "data" and self.measuring:
                        self.received += 1
                        self.lags.append(now_ms - msg["time"])
                    elif msg.get("type") == "error":
                        raise RuntimeError(f"stream error: {msg}")
        except ConnectionClosed as exc:
            code = str(exc.rcvd.code) if exc.rcvd is not None else "no close frame"
            self.close_codes[code] = self.close_codes.get(code, 0) + 1
        finally:
            self.closed += 1
            ready.set()

    async def start(self, count: int) -> None:
        readies = [asyncio.Event() for _ in range(count)]
        for i in range(count):  # in waves: a burst of handshakes is not the workload
            channel = self.channels[i % len(self.channels)]
            self.tasks.append(asyncio.create_task(self._client(channel, readies[i])))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=180)
        if self.closed:
            failed = [t.exception() for t in self.tasks if t.done() and not t.cancelled()]
            raise RuntimeError(
                f"{self.closed} stream clients closed early: {failed[:3]} {self.close_codes}"
            )

    def take(self) -> tuple[array[float], int]:
        lags, received = self.lags, self.received
        self.lags, self.received = array("d"), 0
        return lags, received

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def stream_channels(spread_copies: int) -> list[str]:
    """Every instrument copy's trades channel, without the captures (names only)."""
    trades, names = templates(spread_copies)
    del trades
    return [f"trades:{name}" for name in names]


async def _wait_for_wrk(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = await asyncio.to_thread(proc.communicate)
    return parse_wrk(out)


async def run_part(part: str, args: argparse.Namespace, channels: list[str]) -> dict[str, float]:
    """One fresh server under `part`'s load for `args.seconds`; the figures."""
    rate = 0.0 if part == "rest" else args.rate
    with tempfile.TemporaryDirectory() as tmp:
        spec = Spec(
            args.port,
            rate,
            args.spread,
            args.bus_history,
            loop_lag=args.loop_lag,
            compression=args.ws_compression,
        )
        server = Server(spec, Path(tmp))
        clients: Clients | None = None
        try:
            if part in ("stream", "mixed"):
                clients = Clients(f"ws://127.0.0.1:{args.port}/v1/stream", server.key, channels)
                try:
                    await clients.start(args.clients)
                except RuntimeError as exc:
                    raise RuntimeError(f"{exc}; server: {server.log_tail()}") from None
            await asyncio.sleep(args.warmup)
            wrk = None
            if part in ("rest", "mixed"):
                delay = args.connections * 1000 / args.rest_rate if args.rest_rate else 0.0
                script = wrk_script(args.rest_paths.split(","), delay, Path(tmp))
                base = f"http://127.0.0.1:{args.port}"
                wrk = start_wrk(base, server.key, args.seconds, args.connections, script)
            gc0 = server.stats()
            n0, t0 = server.injected()
            cpu0, wall0 = cpu_s(server.proc.pid), time.perf_counter()
            load0 = cpu_s(os.getpid()) - cpu0  # this process and wrk: CPU 0's load
            if clients is not None:
                clients.take()
                clients.measuring = True
            await asyncio.sleep(args.seconds)
            lags, received = clients.take() if clients is not None else (array("d"), 0)
            n1, t1 = server.injected()
            gc1 = server.stats()
            cpu1, wall1 = cpu_s(server.proc.pid), time.perf_counter()
            load1 = cpu_s(os.getpid()) - cpu1
            result: dict[str, float] = {
                "injected_per_s": (n1 - n0) / max(t1 - t0, 1e-9) if rate else float("nan"),
                "cpu_per_s": (cpu1 - cpu0) / (wall1 - wall0),
                "load_cpu_per_s": (load1 - load0) / (wall1 - wall0),
                "rss_mb": rss_mb(server.proc.pid),
                "gc2_count": gc1["gc2_count"] - gc0["gc2_count"],
                "gc2_ms_per_s": (gc1["gc2_total_ms"] - gc0["gc2_total_ms"]) / (t1 - t0),
                "gc2_max_ms": longest_gc(gc1, gc0["t"]),
            }
            if args.loop_lag:
                late = gc1["late_wakeups"] - gc0["late_wakeups"]
                result["late10_per_s"] = late / (t1 - t0)
            if clients is not None:
                ranked = sorted(lags)
                result |= {
                    "frames_per_s": received / (wall1 - wall0),
                    "lag_p50_ms": percentile(ranked, 0.5),
                    "lag_p99_ms": percentile(ranked, 0.99),
                    "client_closes": float(clients.closed),
                }
            if wrk is not None:
                result |= await _wait_for_wrk(wrk)
            return result
        finally:
            if clients is not None:
                await clients.stop()
            server.stop()


def raise_nofile(clients: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, clients * 2 + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _cell(results: list[dict[str, float]], name: str, fmt: str) -> str:
    values = [r[name] for r in results if name in r and r[name] == r[name]]  # no NaN
    return spread(values, fmt) if values else "–"


def table(runs: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = [
        "| part | trades/s injected | REST req/s | REST p99 ms | stream frames/s "
        "| lag p50 ms | lag p99 ms | server CPU s/s | server RSS MB | full GCs "
        "| longest full GC ms | loop wake-ups >= 10 ms late /s | load CPU s/s | non-2xx "
        "| clients closed |",
        "| --- " + "| ---: " * 14 + "|",
    ]
    names = {"ingest": "ingest alone", "rest": "REST alone", "stream": "stream alone"}
    for part, results in runs.items():
        if not results:
            continue
        bad = sum(r.get("non_2xx", 0) + r.get("errors", 0) for r in results)
        lines.append(
            f"| {names.get(part, part)} | {_cell(results, 'injected_per_s', ',.0f')} "
            f"| {_cell(results, 'rps', ',.0f')} | {_cell(results, 'p99_ms', '.1f')} "
            f"| {_cell(results, 'frames_per_s', ',.0f')} | {_cell(results, 'lag_p50_ms', '.1f')} "
            f"| {_cell(results, 'lag_p99_ms', '.1f')} | {_cell(results, 'cpu_per_s', '.2f')} "
            f"| {_cell(results, 'rss_mb', ',.0f')} | {_cell(results, 'gc2_count', '.0f')} "
            f"| {_cell(results, 'gc2_max_ms', ',.0f')} "
            f"| {_cell(results, 'late10_per_s', '.1f')} "
            f"| {_cell(results, 'load_cpu_per_s', '.2f')} "
            f"| {'–' if part in ('ingest', 'stream') else f'{bad:.0f}'} "
            f"| {_cell(results, 'client_closes', '.0f')} |"
        )
    return lines


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=5000.0, help="trades per second")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--spread", type=int, default=100, help="copies of each instrument")
    parser.add_argument("--rest-rate", type=float, default=200.0, help="offered requests/s")
    parser.add_argument("--connections", type=int, default=10, help="wrk connections")
    parser.add_argument("--rest-paths", default=",".join(REST_PATHS), help="comma-separated")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--bus-history", type=int, default=1000, help="the server's bus_history setting"
    )
    parser.add_argument(
        "--ws-compression",
        action="store_true",
        help="the server accepts the permessage-deflate its clients offer "
        "(CRYPTOPULSE_WS_COMPRESSION=true; the clients always offer it, as websockets does)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mixed", description=__doc__)
    add_load_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--port", type=int, default=18971)
    parser.add_argument(
        "--loop-lag",
        action="store_true",
        help="count the server loop's wake-ups >= 10 ms late per second (bench/_looplag.py)",
    )
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})
    raise_nofile(args.clients)
    parts = [p for p in args.parts.split(",") if p]
    channels = stream_channels(args.spread)
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in parts}
    for _ in range(args.repeats):
        for part in parts:
            runs[part].append(uvloop.run(run_part(part, args, channels)))
    print(
        f"{args.rate:,.0f} trades/s offered over {len(channels)} instruments, "
        f"{args.clients} stream clients, REST {args.rest_rate:g} req/s offered "
        f"(wrk -c{args.connections}), {args.seconds:g} s measured after {args.warmup:g} s, "
        f"{args.repeats} repetitions; targets: REST p99 < 10 ms, stream lag p99 < 50 ms"
    )
    print("\n".join(table(runs)))
    medians = {p: statistics.median(r["cpu_per_s"] for r in rs) for p, rs in runs.items() if rs}
    if "mixed" in medians:
        print(
            f"server CPU s/s, mixed vs the parts' sum: {medians['mixed']:.2f} vs "
            f"{sum(v for p, v in medians.items() if p in ('ingest', 'rest')):.2f} "
            "(ingest + REST; stream alone includes ingest)"
        )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        uvloop.run(serve(*Spec.parse(sys.argv[2:])))
    else:
        raise SystemExit(main(sys.argv[1:]))
