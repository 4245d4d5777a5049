"""Plain functions that run the real `cryptopulse serve` on loopback for SDK and MCP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).parent / "cryptopulse")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(db: Path, **extra: str) -> dict[str, str]:
    """Offline settings: the simulator on three instruments, a temp SQLite store."""
    return {
        **os.environ,
        "CRYPTOPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CRYPTOPULSE_SOURCE": "sim",
        "CRYPTOPULSE_INSTRUMENTS": "coinbase:BTC-USD,binance:ETH-USDT,kraken:SOL-USD",
        "CRYPTOPULSE_LOG_LEVEL": "warning",
        **extra,
    }


def start(db: Path, port: int, **extra: str) -> subprocess.Popen[str]:
    """`cryptopulse serve` on `port`, output to a log file next to the database."""
    log = (db.parent / f"serve-{port}.log").open("a")
    return subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=serve_env(db, **extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(base: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready in time")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def first_key(db: Path) -> str:
    return (db.parent / "first-key.txt").read_text().strip()
