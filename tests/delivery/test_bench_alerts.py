"""The alert benchmark runs on the real trade flow and the index fires exactly what a
linear scan fires (the figures themselves go to docs/benchmarks.md, never into a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_and_agrees_with_the_scan() -> None:
    args = ["--rules", "300", "--instruments", "3", "--repeat", "1", "--baseline-share", "0.5"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "alerts", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed (AlertBook)" in done.stdout and "MISMATCH" not in done.stdout
