"""REST hot paths under wrk: our routes (auth and rate limiting on) vs a bare Starlette
route with the same pre-built bytes vs a pydantic ``response_model`` route, one server.

    python -m bench rest [--seconds 4] [--repeats 3] [--connections 32]

The server (bench/_rest_server.py) is pinned to CPU 1 and wrk to CPU 0 with ``taskset``;
each repetition runs every path in turn, so all of them share the machine's mood. wrk
(Debian's) runs a closed loop at `--connections`; it has no fixed-rate mode, so "p99 at
70 % of peak" needs wrk2 and is not measured here.
"""

from __future__ import annotations

import argparse
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
    "ticker: bare Starlette": "/bare/ticker",
    "ticker: pydantic route": "/peer/tickers/coinbase:BTC-USD",
    "candles 100: ours": "/v1/candles/coinbase:BTC-USD?limit=100",
    "candles 100: bare Starlette": "/bare/candles",
    "candles 100: pydantic route": "/peer/candles/coinbase:BTC-USD?limit=100",
}
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


def _start_server(port: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    key_file = tmp / "key"
    server = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-m", "bench._rest_server", str(port)]
        + [str(key_file), str(tmp / "bench.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if key_file.exists() and key_file.read_text():
            time.sleep(0.5)  # the key is written just before uvicorn binds
            return server, key_file.read_text()
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the bench server did not start within 60 s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rest", description=__doc__)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args(argv)
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        server, key = _start_server(args.port, Path(tmp))
        try:
            for _ in range(args.repeats):
                for name, path in PATHS.items():
                    url = f"http://127.0.0.1:{args.port}{path}"
                    runs[name].append(wrk(url, key, args.seconds, args.connections))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.repeats} repetitions")
    print("| route | requests/s (min–max) | p99 ms (min–max) | vs bare | vs pydantic | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, result in runs.items():
        kind = name.split(":")[0]
        rps = [r for r, _, _ in result]
        p99 = [p for _, p, _ in result]
        bare = statistics.median(r for r, _, _ in runs[f"{kind}: bare Starlette"])
        peer = statistics.median(r for r, _, _ in runs[f"{kind}: pydantic route"])
        med = statistics.median(rps)
        print(
            f"| {name} | {med:,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) "
            f"| {statistics.median(p99):.1f} ({min(p99):.1f}–{max(p99):.1f}) "
            f"| {med / bare:.2f}× | {med / peer:.2f}× | {sum(b for _, _, b in result)} |"
        )
    return 0
