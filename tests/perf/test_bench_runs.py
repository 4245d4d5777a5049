"""The issue-7 benchmarks run end to end with tiny sizes (`make bench` is not in `make test`,
but must not rot): real servers on loopback, real wrk, real WebSocket clients."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str, timeout: int = 100) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_ingest_and_serialization_run() -> None:
    out = _bench("ingest", "--laps", "2", "--repeats", "1")
    assert "| pipeline |" in out and "| cryptofeed |" in out
    out = _bench("serialization", "--repeats", "1", "--number", "20")
    assert out.count("| msgspec Struct encode |") == 2


@pytest.mark.timeout(120)
def test_rest_runs_with_every_request_answered() -> None:
    out = _bench(
        "rest", "--seconds", "1", "--repeats", "1", "--connections", "2", "--port", "18951"
    )
    rows = [
        line for line in out.splitlines() if line.startswith("| ticker") or "candles 100" in line
    ]
    assert len(rows) == 6
    assert all(line.rstrip(" |").endswith("| 0") for line in rows), out  # no non-2xx


@pytest.mark.timeout(120)
def test_fanout_runs_and_delivers() -> None:
    out = _bench(
        "fanout",
        "--clients",
        "5",
        "--rate",
        "20",
        "--seconds",
        "1",
        "--repeats",
        "1",
        "--port",
        "18961",
    )
    rows = [line for line in out.splitlines() if line.startswith("| ours")]
    assert len(rows) == 1 and "| 0 (" not in rows[0], out
