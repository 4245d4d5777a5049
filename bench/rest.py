"""REST hot paths under wrk: our routes (auth and rate limiting on) vs a bare Starlette
app returning the same pre-built bytes (the ceiling), the same app sending our headers, a
bare route placed first in our app (behind our middleware stack), and a pydantic
``response_model`` route, all on one server.

    python -m bench rest [--seconds 4] [--repeats 3] [--connections 32] [--before SRC]

The server (bench/_rest_server.py) is pinned to CPU 1 and wrk to CPU 0 with ``taskset``;
each repetition runs the contenders of a route back to back, in an order that rotates
from one repetition to the next, so neighbours in time share the machine's mood. The
"vs" columns are medians of the per-repetition ratios (each against the contender run
next to it), min–max in brackets: on a shared machine they wander far less than the
requests/s themselves. ``--before SRC`` also serves our routes from another source tree
(e.g. ``git archive <commit> src``: the package directory above ``cryptopulse/``) in a
second server on the same CPU, measured in the same rotation ("ours (before)" rows).
wrk (Debian's) runs a closed loop at `--connections`. For "p99 at 70 % of peak" each of our
routes is then offered ~70 % of its peak over paced connections, each pausing ~25 ms
before every request (a wrk Lua ``delay``) so that together they send 0.7 × peak
requests/s while the server keeps up. Many connections cost the server more than the 32 of
the closed loop (~10,500 instead of ~13,500 ticker requests/s at 235), so that peak is
measured again, closed loop, over as many connections as the paced run will use.
Debian's wrk has no fixed-rate mode (wrk2 is not packaged): a paused closed loop sends
late when a response is slow, so this p99 can understate a true open-loop p99
(coordinated omission); the achieved rate is reported next to it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PATHS = {
    "ticker: ours": "/v1/tickers/coinbase:BTC-USD",
    "ticker: bare Starlette app": "/ceiling/ticker",
    "ticker: bare app, our headers": "/ceiling/ticker-headers",
    "ticker: bare route in our app": "/bare/ticker",
    "ticker: pydantic route": "/peer/tickers/coinbase:BTC-USD",
    "candles 100: ours": "/v1/candles/coinbase:BTC-USD?limit=100",
    "candles 100: bare Starlette app": "/ceiling/candles",
    "candles 100: bare app, our headers": "/ceiling/candles-headers",
    "candles 100: bare route in our app": "/bare/candles",
    "candles 100: pydantic route": "/peer/candles/coinbase:BTC-USD?limit=100",
}
# The ceiling: a Starlette app of its own (Starlette's two default middlewares, its
# router) with one route returning the pre-built bytes, served by the same server; then
# the same sending our 18 headers instead of 2 (uvicorn checks and writes each).
CEILING = "bare Starlette app"
WITH_HEADERS = "bare app, our headers"
IN_APP = "bare route in our app"
BEFORE = "ours (before)"
PAUSE_S = 0.025  # each paced connection's pause between requests, about
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(url: str, key: str, seconds: int, connections: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx responses) of one wrk run pinned to CPU 0."""
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        + ["-H", f"Authorization: Bearer {key}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # anchored: an unanchored "99%" also matches a "+/- Stdev" column such as "74.99%"
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(bad.group(1)) if bad else 0


def paced(
    url: str, key: str, seconds: int, connections: int, rate: float, folder: Path
) -> dict[str, float]:
    """wrk runs offering about `rate` requests/s over paced connections: enough connections
    that each pauses ~25 ms (wrk's pause is whole ms), the pause calibrated by up to three
    1 s runs (a request takes its pause plus its own round trip)."""
    from bench._measure import parse_wrk, start_wrk, wrk_script  # noqa: PLC0415  (cycle)

    base, _, path = url.partition("/v1/")
    paths = [f"/v1/{path}"]
    conns = max(connections, math.ceil(rate * PAUSE_S))
    pause = conns * 1000.0 / rate

    def run(pause_ms: float, secs: int) -> dict[str, float]:
        script = wrk_script(paths, max(pause_ms, 1.0), folder)
        out, _ = start_wrk(base, key, secs, conns, script).communicate(timeout=secs + 30)
        return parse_wrk(out)

    for _ in range(3):  # calibrate: each request takes its pause plus its round trip
        achieved = max(run(pause, 1)["rps"], 1.0)
        if abs(achieved / rate - 1.0) < 0.05:
            break
        pause += conns * 1000.0 / rate - conns * 1000.0 / achieved
    result = run(pause, seconds)
    result["connections"] = conns
    return result


def _start_server(
    port: int, tmp: Path, src: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    key_file = tmp / "key"
    env = dict(os.environ)
    if src is not None:
        # The other tree's package first; bench/ still comes from this checkout.
        env["PYTHONPATH"] = os.pathsep.join([src, str(Path(__file__).resolve().parents[1])])
    server = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-m", "bench._rest_server", str(port)]
        + [str(key_file), str(tmp / "bench.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(600):
        if key_file.exists() and key_file.read_text():
            time.sleep(0.5)  # the key is written just before uvicorn binds
            return server, key_file.read_text()
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the bench server did not start within 60 s")


def _contenders(before: bool) -> dict[str, list[str]]:
    """Route kind -> its contenders (names of `runs`), measured back to back."""
    kinds: dict[str, list[str]] = {}
    for name in PATHS:
        kinds.setdefault(name.split(":")[0], []).append(name)
    if before:
        for kind, names in kinds.items():
            names.insert(1, f"{kind}: {BEFORE}")
    return kinds


def _ratios(mine: list[float], theirs: list[float]) -> str:
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    from bench._measure import spread  # noqa: PLC0415  (cycle: it imports _ms from here)

    parser = argparse.ArgumentParser(prog="python -m bench rest", description=__doc__)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument("--before", metavar="SRC", help="also serve our routes from SRC")
    parser.add_argument(
        "--load", type=float, default=0.7, help="offered load as a fraction of peak (p99 run)"
    )
    args = parser.parse_args(argv)
    kinds = _contenders(args.before is not None)
    runs: dict[str, list[tuple[float, float, int]]] = {
        name: [] for names in kinds.values() for name in names
    }
    with tempfile.TemporaryDirectory() as tmp:
        servers = [_start_server(args.port, Path(tmp))]
        if args.before is not None:
            (Path(tmp) / "before").mkdir()
            servers.append(_start_server(args.port + 1, Path(tmp) / "before", args.before))
        try:
            for rep in range(args.repeats):
                for names in kinds.values():
                    shift = rep % len(names)
                    for name in names[shift:] + names[:shift]:
                        kind, contender = name.split(": ")
                        port, key = args.port, servers[0][1]
                        if contender == BEFORE:
                            port, key = args.port + 1, servers[1][1]
                            path = PATHS[f"{kind}: ours"]
                        else:
                            path = PATHS[name]
                        url = f"http://127.0.0.1:{port}{path}"
                        runs[name].append(wrk(url, key, args.seconds, args.connections))
            peaks = {
                kind: statistics.median(r for r, _, _ in runs[f"{kind}: ours"]) for kind in kinds
            }
            at_load: dict[str, list[dict[str, float]]] = {}
            for kind in kinds:
                url = f"http://127.0.0.1:{args.port}{PATHS[f'{kind}: ours']}"
                # The paced run's connections cost the server more than the closed loop's
                # 32 (fewer requests per wake-up): its peak is measured with as many.
                conns = max(args.connections, math.ceil(args.load * peaks[kind] * PAUSE_S))
                peaks[kind] = statistics.median(
                    wrk(url, servers[0][1], args.seconds, conns)[0] for _ in range(args.repeats)
                )
                at_load[kind] = [
                    paced(
                        url,
                        servers[0][1],
                        args.seconds,
                        args.connections,
                        args.load * peaks[kind],
                        Path(tmp),
                    )
                    for _ in range(args.repeats)
                ]
        finally:
            for server, _ in servers:
                server.terminate()
                server.wait(timeout=30)
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.repeats} repetitions")
    print(
        "| route | requests/s (min–max) | p99 ms (min–max) | vs bare app (ceiling) "
        "| vs bare app, our headers | vs bare route in our app | vs pydantic | non-2xx |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, names in kinds.items():
        bare = [r for r, _, _ in runs[f"{kind}: {CEILING}"]]
        headers = [r for r, _, _ in runs[f"{kind}: {WITH_HEADERS}"]]
        in_app = [r for r, _, _ in runs[f"{kind}: {IN_APP}"]]
        peer = [r for r, _, _ in runs[f"{kind}: pydantic route"]]
        for name in names:
            result = runs[name]
            rps = [r for r, _, _ in result]
            p99 = [p for _, p, _ in result]
            print(
                f"| {name} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) "
                f"| {statistics.median(p99):.1f} ({min(p99):.1f}–{max(p99):.1f}) "
                f"| {_ratios(rps, bare)} | {_ratios(rps, headers)} | {_ratios(rps, in_app)} "
                f"| {_ratios(rps, peer)} "
                f"| {sum(b for _, _, b in result)} |"
            )
    print()
    print(
        f"ours at {args.load:.0%} of its peak (paced wrk connections, each pausing ~25 ms; "
        "the peak: closed-loop wrk over as many connections)"
    )
    print(
        "| route | connections | peak requests/s | offered | achieved requests/s "
        "| p50 ms | p99 ms | non-2xx |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, results in at_load.items():
        achieved = [r["rps"] for r in results]
        p50 = [r["p50_ms"] for r in results]
        p99 = [r["p99_ms"] for r in results]
        print(
            f"| {kind} | {results[0]['connections']:.0f} | {peaks[kind]:,.0f} "
            f"| {args.load * peaks[kind]:,.0f} "
            f"| {spread(achieved)} ({statistics.median(achieved) / peaks[kind]:.0%} of peak) "
            f"| {spread(p50, '.1f')} | {spread(p99, '.1f')} "
            f"| {sum(r['non_2xx'] + r['errors'] for r in results):.0f} |"
        )
    return 0
