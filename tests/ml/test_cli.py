"""`cryptopulse train` and `cryptopulse models` against a real SQLite store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
from typer.testing import CliRunner

from cryptopulse.cli import app
from cryptopulse.store.sql import SQLStore

from .factories import logistic_onnx, real_candles

ROOT = Path(__file__).resolve().parents[2]


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--database-url", url, *args])
    return result.exit_code, result.output


async def _fill(url: str) -> None:
    store = SQLStore(url)
    await store.migrate()
    try:
        await store.upsert_candles(real_candles("ETH", 1200))
    finally:
        await store.close()


def test_train_list_and_register(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    asyncio.run(_fill(url))
    code, output = invoke(url, "train", "--horizon", "6", "--folds", "2", "--max-iter", "5")
    assert code == 0, output
    model = tmp_path / "tilt.onnx"
    model.write_bytes(logistic_onnx([1.0, -1.0], 0.0))
    code, output = invoke(url, "models", "register", str(model), "--name", "tilt",
                          "--horizon", "3", "--features", "rsi,ret_1")  # fmt: skip
    assert code == 0 and "registered tilt v1" in output, output
    code, output = invoke(url, "models", "list", "--json")
    assert code == 0, output
    listed = {m["name"]: m for m in orjson.loads(output)}
    assert listed["baseline"]["instrument"] == "binance:ETH-BTC"
    # 1,200 candles in 3 blocks: the first (< 500 rows) is too short to train on.
    assert listed["baseline"]["scores"]["folds"] == 1
    assert listed["tilt"]["features"] == ["rsi", "ret_1"] and listed["tilt"]["kind"] == "onnx"
    # A model that breaks the contract is refused with a message, not a traceback.
    code, output = invoke(url, "models", "register", str(model), "--name", "bad",
                          "--horizon", "3", "--features", "rsi")  # fmt: skip
    assert code == 1 and "input must be" in output


def test_train_without_candles_fails(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    code, output = invoke(url, "train", "-i", "binance:ETH-BTC")
    assert code == 1 and "no model trained" in output


def test_prediction_benchmark_runs_with_tiny_sizes() -> None:
    args = ["--concurrency", "1,20", "--seconds", "0.2", "--max-iter", "5"]
    done = subprocess.run([sys.executable, "-m", "bench", "predictions", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=55, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[2].strip() for r in rows[2:]] == ["batched", "per request"] * 2
