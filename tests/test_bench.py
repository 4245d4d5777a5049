"""The benchmark runs (tiny sizes): `make bench` stays out of `make test`, but must not rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_indicator_benchmark_runs_with_tiny_sizes() -> None:
    args = ["--instruments", "3", "--updates", "2", "--repeats", "2", "--window", "300"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip().split(" (")[0] for row in rows[2:]] == [
        "cryptopulse",
        "TA-Lib recompute",
        "talipp",
    ]
    assert rows[2].endswith("| 1.0× |"), rows
