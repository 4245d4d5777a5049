"""What the server-level benchmarks (servers, mixed, soak) measure, shared: CPU time and
RSS of a server's whole process tree from /proc, and wrk runs over several paths with an
optional per-connection pause (an offered rate instead of a closed loop at saturation);
and `app_server`, our app served as `cryptopulse serve` serves it (rest, fanout, mixed)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.rest import _ms

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree(pid: int) -> list[int]:
    """`pid` and every process below it (workers of a multi-process server)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by the live processes of `pid`'s tree."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICK


def rss_mb(pid: int) -> float:
    """Resident memory of `pid`'s tree in MB (sum of each process's RSS)."""
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * _PAGE_KB / 1024


def wrk_script(paths: Sequence[str], delay_ms: float, folder: Path) -> Path:
    """A wrk Lua script cycling over `paths`, pausing `delay_ms` before each request."""
    quoted = ", ".join(f'"{p}"' for p in paths)
    script = folder / "paths.lua"
    script.write_text(
        f"local paths = {{{quoted}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  return wrk.format(nil, paths[i % #paths + 1])\n"
        "end\n" + (f"delay = function() return {delay_ms:.0f} end\n" if delay_ms > 0 else "")
    )
    return script


def start_wrk(
    base: str, key: str, seconds: float, connections: int, script: Path, cpu: int = 0
) -> subprocess.Popen[str]:
    """wrk pinned to `cpu`, one thread, `connections` connections, running `script`."""
    return subprocess.Popen(
        ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s"]
        + ["--latency", "--timeout", "10s", "-s", str(script)]
        + ["-H", f"Authorization: Bearer {key}", base],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def parse_wrk(out: str) -> dict[str, float]:
    """requests/s, p50 and p99 (ms, from the "Latency Distribution" block, anchored), the
    requests, and the non-2xx responses and socket errors of one wrk run."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    done = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    if not (rps and p50 and p99 and done):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "requests": float(done.group(1)),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    """ "median (min–max)" of the repetitions."""
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def unsorted_percentile(values: array[float], q: float) -> float:
    """`percentile` of values not sorted: numpy selects the rank in place of a sort, which
    at 400,000 lags a minute stood the load generator's loop still for ~80 ms."""
    if not values:
        return float("nan")
    k = min(len(values) - 1, int(len(values) * q))
    return float(np.partition(np.frombuffer(values), k)[k])


def app_server(app: Any, port: int, log_level: str = "warning", **options: Any) -> Any:
    """Our app under uvicorn as `cryptopulse serve` runs it (server.build_server): uvloop,
    httptools, no proxy-headers middleware, no `server` header, the app's
    `ws_compression` setting and our `GracefulServer`, whose startup starts the GC policy
    (processes/_gc.py). The app's lifespan is the caller's (`lifespan="off"`): it seeds
    keys and data before serving."""
    import uvicorn  # noqa: PLC0415  (server side only)

    from cryptopulse.server import GracefulServer  # noqa: PLC0415

    options.setdefault("ws_per_message_deflate", app.state.settings.ws_compression)
    options.setdefault("access_log", False)  # as serve's default (CRYPTOPULSE_ACCESS_LOG)

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        **options,
    )
    return GracefulServer(config)
