"""The real `cryptopulse serve --source sim` process for browser and docs tests.

Optionally imports real 5-minute candles from ../shared/data first, so grades, sectors,
signals and levels exist at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cryptopulse import importer
from cryptopulse.store.sql import SQLStore

BIN = Path(sys.executable).parent
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
INSTRUMENTS = "coinbase:BTC-USD,binance:ETH-USDT,kraken:SOL-USD"


@dataclass
class Served:
    """A running server: `base` is `http://127.0.0.1:PORT`, `key` the first admin key."""

    base: str
    key: str
    proc: subprocess.Popen[str]
    env: dict[str, str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CRYPTOPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CRYPTOPULSE_INSTRUMENTS": INSTRUMENTS,
        "CRYPTOPULSE_ANALYTICS_HISTORY_CANDLES": "3000",
        "CRYPTOPULSE_ANALYTICS_WARMUP_CANDLES": "1000",
    }


def import_candles(env: dict[str, str], pairs: Sequence[str]) -> None:
    """Import the shared 5m files as `binance:<pair>`, with the importer that
    `cryptopulse import candles` runs (in this process: one migration, no interpreter start
    per file)."""
    if pairs:
        # A thread of its own: Playwright's sync API may already run a loop on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _import(env["CRYPTOPULSE_DATABASE_URL"], pairs)).result()


async def _import(url: str, pairs: Sequence[str]) -> None:
    store = SQLStore(url)
    try:
        await store.migrate()
        for pair in pairs:
            path = DATA / "candles" / f"{pair}-5m.csv.gz"
            await importer.import_candles(store, path, f"binance:{pair}", "5m")
    finally:
        await store.close()


@contextmanager
def serve(
    tmp: Path,
    pairs: Sequence[str] = (),
    extra: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Served]:
    """Start the server on a free port with a temp SQLite store; kill it afterwards."""
    db = tmp / "dash.db"
    env = {**server_env(db), **(extra or {})}
    import_candles(env, pairs)
    port = port or free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "cryptopulse"), "serve", "--source", "sim", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, tmp / "serve.log")
        key = (db.parent / "first-key.txt").read_text().strip()
        yield Served(base, key, proc, env)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def wait_ready(base: str, proc: subprocess.Popen[str], log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready in time:\n{log.read_text()[-3000:]}")
