"""`python -m bench fanout --slow`: the slow-client variant runs end to end with tiny sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_fanout_slow_variant_reports_healthy_and_slow_clients() -> None:
    args = ["--clients", "10", "--rate", "20", "--seconds", "1", "--repeats", "1"]
    args += ["--slow", "0.2", "--kinds", "ours", "--compression", "none", "--port", "18963"]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "fanout", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "With 2 slow clients" in out, out
    (row,) = [line for line in out.splitlines() if line.startswith("| ours | ") and "→" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1].endswith("%") and cells[1] != "0%", row  # healthy clients got frames
    # Two slow clients, each still open or closed with a code, and how much each read.
    assert "2× open" in cells[4] or "4008" in cells[4], row
    assert "frames read" in cells[4], row
