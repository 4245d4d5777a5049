"""Server choice: the same app under uvicorn + h11, uvicorn + httptools (uvloop) and
granian (ASGI), with 1, 2 and 5 worker processes each, driven by wrk.

    python -m bench servers [--seconds 5] [--repeats 3] [--connections 32]
                            [--servers h11,httptools,granian] [--workers 1,2,5]

The app is the real one in the deployment that runs several workers (`cryptopulse serve
--workers N` refuses more than one without it): the scale-out configuration, PostgreSQL
store (a fresh database on 127.0.0.1:5432, dropped afterwards), Redis bus (127.0.0.1:6379,
a key prefix of its own, deleted afterwards), every worker an API-only replica
(``processes.replica.api_services``) that loads the tickers from Redis; rate limits in
each worker's memory (the default). Before the servers start, this process seeds 200
minutes of coinbase:BTC-USD trades through the real pipeline (candles to PostgreSQL,
tickers to Redis) and creates a real API key of a plan whose limits nothing reaches
(auth and the rate limiter run their whole path; 0 non-2xx expected).

Each server command is the one a deployment would run (``uvicorn bench.servers:app
--factory --workers N ...``, ``granian --interface asgi --factory --workers N ...``),
its whole process tree pinned to CPU 1 with ``taskset``, wrk (``-t1 -c32``) pinned to
CPU 0, on ``/v1/tickers/coinbase:BTC-USD`` and ``/v1/candles/coinbase:BTC-USD?limit=100``
in turn after a discarded warm-up run. Each repetition starts every server afresh and runs
them in turn, so they share the machine's mood. Reported: requests/s, p99 (wrk's latency
distribution), the server's CPU seconds per 1,000 requests (utime + stime of its process
tree from /proc, before and after the run) and its RSS (the tree's, after the runs).
PostgreSQL and Redis are not pinned and not counted: the candles route's database work
runs there.

On a 2-CPU machine with the load generator on one CPU, every worker count shares the
other CPU: 2 and 5 workers measure what extra processes cost (memory, context switches,
per-worker caches and connections) when there is no core for them, not how far workers
scale with cores.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._measure import cpu_s, parse_wrk, rss_mb, spread, start_wrk, wrk_script

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
PATHS = {
    "ticker": "/v1/tickers/coinbase:BTC-USD",
    "candles 100": "/v1/candles/coinbase:BTC-USD?limit=100",
}
SERVERS = {
    "uvicorn h11": "h11",
    "uvicorn httptools": "httptools",
    "granian": "granian",
}


def app() -> Any:
    """The ASGI app of one worker (``--factory``): an API-only scale-out replica, its
    settings from CRYPTOPULSE_* as set by `main`."""
    from cryptopulse.api import create_app
    from cryptopulse.processes.replica import api_services
    from cryptopulse.settings import Settings

    return create_app(Settings(), api_services, migrate=False)


def _command(kind: str, port: int, workers: int) -> list[str]:
    bindir = Path(sys.executable).parent
    if kind == "granian":
        return [str(bindir / "granian"), "--interface", "asgi", "--factory"] + [
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
            "bench.servers:app",
        ]  # fmt: skip
    loop = "asyncio" if kind == "h11" else "uvloop"
    return [str(bindir / "uvicorn"), "bench.servers:app", "--factory"] + [
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--http", kind, "--loop", loop, "--no-access-log", "--log-level", "warning",
        "--no-server-header",
    ]  # fmt: skip


async def _admin(sql: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _environment(database: str, prefix: str) -> dict[str, str]:
    from bench._rest_server import _UNLIMITED

    return {
        "CRYPTOPULSE_DATABASE_URL": POSTGRES.rsplit("/", 1)[0] + f"/{database}",
        "CRYPTOPULSE_BUS_URL": REDIS,
        "CRYPTOPULSE_REDIS_PREFIX": prefix,
        "CRYPTOPULSE_PLANS": orjson.dumps({"bench": _UNLIMITED}).decode(),
        "CRYPTOPULSE_BOOTSTRAP_KEY": "false",
        "CRYPTOPULSE_SOURCE": "sim",
        "CRYPTOPULSE_LOG_LEVEL": "warning",
    }


async def _seed(env: dict[str, str]) -> str:
    """Migrate, seed the candles and tickers through the real pipeline; the API key."""
    from bench._rest_server import _UNLIMITED, INSTRUMENT
    from bench._rest_server import _seed as seed_trades
    from cryptopulse.api import create_app
    from cryptopulse.bus.redis import RedisBus
    from cryptopulse.processes.replica import migrate_once
    from cryptopulse.runtime import Services
    from cryptopulse.settings import Settings

    settings = Settings(
        database_url=env["CRYPTOPULSE_DATABASE_URL"],
        bus_url=env["CRYPTOPULSE_BUS_URL"],
        redis_prefix=env["CRYPTOPULSE_REDIS_PREFIX"],
        plans={"bench": _UNLIMITED},
        bootstrap_key=False,
        source="sim",
    )
    await asyncio.to_thread(migrate_once, settings)
    api = create_app(settings, lambda s: Services.create(s, sources=[]), migrate=False)
    async with api.router.lifespan_context(api):
        key = await seed_trades(api)
        bus = api.state.services.bus
        assert isinstance(bus, RedisBus)
        await bus.put_state("sources", {INSTRUMENT: b"replay"})
        for _ in range(100):
            if f"ticker:{INSTRUMENT}" in await bus.latest_state():
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the seeded ticker did not reach Redis")
    return key


async def _cleanup(database: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()
    await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _start(
    kind: str, port: int, workers: int, env: dict[str, str], key: str, log: Path
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *_command(kind, port, workers)],
        env=os.environ | env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}{PATHS['ticker']}"
    deadline = time.monotonic() + 120
    ok = 0
    while time.monotonic() < deadline:  # ready: 5 answers in a row with the ticker
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            status = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
            ok = ok + 1 if status.status_code == 200 else 0
        except httpx.HTTPError:
            ok = 0
        if ok >= 5 * workers:
            _settle(proc.pid)
            candles = httpx.get(
                f"http://127.0.0.1:{port}{PATHS['candles 100']}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            rows = len(candles.json()["data"])
            if rows != 100:
                raise RuntimeError(f"{kind}: the candle page has {rows} rows, not 100")
            return proc
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"{kind} with {workers} workers did not serve the ticker in 120 s")


def _settle(pid: int, timeout_s: float = 60.0) -> None:
    """Wait until the idle server tree uses < 0.1 CPU s/s: every worker has finished
    importing and starting (the first to answer is not the last to be ready)."""
    deadline = time.monotonic() + timeout_s
    before = cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_s(pid)
        if now - before < 0.1:
            return
        before = now


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def _wrk(port: int, key: str, path: str, seconds: float, connections: int, tmp: Path) -> str:
    script = wrk_script([path], 0, tmp)
    wrk = start_wrk(f"http://127.0.0.1:{port}", key, seconds, connections, script)
    out, _ = wrk.communicate(timeout=seconds + 60)
    return out


def run_one(
    kind: str, workers: int, args: argparse.Namespace, env: dict[str, str], key: str, tmp: Path
) -> dict[str, dict[str, float]]:
    """Start one server, warm it up, measure each path; {path: figures}."""
    proc = _start(kind, args.port, workers, env, key, tmp / "server.log")
    try:
        results: dict[str, dict[str, float]] = {}
        for name, path in PATHS.items():
            _wrk(args.port, key, path, 1, args.connections, tmp)  # warm-up, discarded
            cpu0 = cpu_s(proc.pid)
            figures = parse_wrk(_wrk(args.port, key, path, args.seconds, args.connections, tmp))
            figures["cpu_ms_per_req"] = (cpu_s(proc.pid) - cpu0) / figures["requests"] * 1e3
            results[name] = figures
        rss = rss_mb(proc.pid)
        for figures in results.values():
            figures["rss_mb"] = rss
        return results
    finally:
        _stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench servers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--servers", default=",".join(SERVERS.values()))
    parser.add_argument("--workers", default="1,2,5")
    parser.add_argument("--port", type=int, default=18901)
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kinds = [k for k in args.servers.split(",") if k]
    counts = [int(w) for w in args.workers.split(",") if w]
    labels = {v: k for k, v in SERVERS.items()}
    tag = uuid.uuid4().hex[:10]
    database, prefix = f"cp_bench_{tag}", f"cpbench:{tag}:"
    env = _environment(database, prefix)
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    runs: dict[tuple[str, int], list[dict[str, dict[str, float]]]] = {
        (k, w): [] for k in kinds for w in counts
    }
    try:
        key = asyncio.run(_seed(env))
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for kind in kinds:
                    for workers in counts:
                        runs[kind, workers].append(
                            run_one(kind, workers, args, env, key, Path(tmp))
                        )
    finally:
        asyncio.run(_cleanup(database, prefix))
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s on CPU 0, server tree on CPU 1, "
        f"{args.repeats} repetitions; PostgreSQL + Redis scale-out workers"
    )
    print(
        "| server | workers | route | requests/s (min–max) | p99 ms (min–max) "
        "| server CPU s per 1,000 requests (min–max) | RSS MB | non-2xx + errors |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in PATHS:
        for (kind, workers), results in runs.items():
            rows = [r[name] for r in results]
            bad = sum(r["non_2xx"] + r["errors"] for r in rows)
            print(
                f"| {labels[kind]} | {workers} | {name} "
                f"| {spread([r['rps'] for r in rows])} "
                f"| {spread([r['p99_ms'] for r in rows], '.1f')} "
                f"| {spread([r['cpu_ms_per_req'] for r in rows], '.2f')} "
                f"| {spread([r['rss_mb'] for r in rows])} | {bad:.0f} |"
            )
    return 0
