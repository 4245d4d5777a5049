"""The issue-7 benchmarks run end to end with tiny sizes (`make bench` is not in `make test`,
but must not rot): real servers on loopback, real wrk, real WebSocket clients."""

from __future__ import annotations

import random
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# bench/ is not an installed package: the soak's percentile is tested from there.
sys.path.insert(0, str(ROOT))

from bench._measure import percentile, unsorted_percentile  # noqa: E402


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


@pytest.mark.postgres
def test_store_runs_every_contender_on_both_backends() -> None:
    out = _bench("store", "--rows", "300", "--repeats", "1")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| SQLite")]
    rows += [line.split(" | ") for line in out.splitlines() if line.startswith("| PostgreSQL")]
    assert [r[1] for r in rows] == ["ours", "SQLAlchemy Core", "driver only"] * 2, out
    assert all(float(r[2].split()[0]) > 0 for r in rows), out


@pytest.mark.redis
def test_ratelimit_runs_both_paths() -> None:
    out = _bench("ratelimit", "--hits", "20", "--repeats", "2")
    rows = [line for line in out.splitlines() if line.startswith(("| limits", "| script"))]
    assert len(rows) == 2 and all(float(line.split(" | ")[1]) > 0 for line in rows), out
    assert "limits / script: " in out, out


@pytest.mark.timeout(120)
def test_rest_runs_with_every_request_answered() -> None:
    out = _bench(
        "rest", "--seconds", "1", "--repeats", "1", "--connections", "2", "--port", "18951"
    )
    rows = [
        line for line in out.splitlines() if line.startswith("| ticker") or "candles 100" in line
    ]
    assert len(rows) == 12  # 5 contenders of 2 routes, then ours of each at 70 % of peak
    assert all(line.rstrip(" |").endswith("| 0") for line in rows), out  # no non-2xx
    paced = [line for line in rows if "of peak)" in line]
    assert [line.split(" | ")[0] for line in paced] == ["| ticker", "| candles 100"], out


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


@pytest.mark.timeout(170)
def test_servers_run_every_server_and_worker_count() -> None:
    out = _bench(
        "servers",
        "--seconds",
        "1",
        "--repeats",
        "1",
        "--connections",
        "2",
        "--workers",
        "1,2",
        "--port",
        "18971",
        timeout=160,
    )
    rows = [line for line in out.splitlines() if line.startswith(("| uvicorn", "| granian"))]
    assert len(rows) == 3 * 2 * 2, out  # servers × worker counts × routes
    assert all(line.rstrip(" |").endswith("| 0") for line in rows), out  # every answer a 2xx


@pytest.mark.timeout(120)
def test_mixed_runs_every_part_and_delivers() -> None:
    out = _bench(
        "mixed",
        "--rate",
        "200",
        "--clients",
        "10",
        "--spread",
        "2",
        "--rest-rate",
        "40",
        "--connections",
        "2",
        "--seconds",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--port",
        "18976",
        "--loop-lag",
        "--ws-compression",
    )
    lines = out.splitlines()
    header = [cell.strip() for cell in lines[1].split("|")[1:-1]]
    rows = {
        cells[0]: dict(zip(header, cells, strict=True))
        for line in lines[3:7]
        if (cells := [cell.strip() for cell in line.split("|")[1:-1]])
    }
    assert set(rows) == {"ingest alone", "REST alone", "stream alone", "mixed"}, out
    for part in ("stream alone", "mixed"):
        assert rows[part]["stream frames/s"] not in ("–", "0"), out
        assert rows[part]["clients closed"] == "0", out
    assert rows["REST alone"]["non-2xx"] == rows["mixed"]["non-2xx"] == "0", out
    for part in rows.values():  # the server's loop lag was counted in every part
        assert float(part["loop wake-ups >= 10 ms late /s"]) >= 0, out


@pytest.mark.timeout(120)
def test_soak_samples_rss_to_the_end() -> None:
    out = _bench(
        "soak",
        "--minutes",
        "0.2",
        "--every",
        "1",
        "--warmup",
        "1",
        "--rate",
        "200",
        "--clients",
        "5",
        "--spread",
        "2",
        "--rest-rate",
        "20",
        "--connections",
        "2",
        "--port",
        "18986",
    )
    lines = out.splitlines()
    summary = lines[3].strip("| ").split(" | ")
    start, end, top = (float(cell.replace(",", "")) for cell in summary[:3])
    assert 0 < start <= top and 0 < end <= top, out
    assert summary[-2] == "0", out  # no non-2xx REST answers
    rows = [line.strip("| ").split(" | ") for line in lines[6:] if line.startswith("| ")]
    assert rows, out  # a per-minute row
    header = lines[4].strip("| ").split(" | ")
    assert all(len(row) == len(header) for row in rows), out
    # Each minute says which side stood still: every stall and CPU column is a figure.
    for row in rows:
        stalls = dict(zip(header, row, strict=True))
        assert float(stalls["server loop's longest wait ms"]) >= 0, out
        assert 0 < float(stalls["its CPU s/s"]) <= 2, out  # the load generator's


def test_the_soak_p99_without_a_sort_is_the_sorted_rank() -> None:
    """The soak's per-minute p99 selects the rank instead of sorting (a sort of a minute's
    lags stood the load generator still): the same value as `percentile` of the sorted."""
    rng = random.Random(7)
    for size in (1, 2, 99, 100, 101, 4_321):
        values = array("d", (rng.expovariate(0.05) for _ in range(size)))
        ranked = sorted(values)
        for q in (0.5, 0.99):
            assert unsorted_percentile(values, q) == percentile(ranked, q), (size, q)
    assert unsorted_percentile(array("d"), 0.99) != unsorted_percentile(array("d"), 0.99)  # nan
