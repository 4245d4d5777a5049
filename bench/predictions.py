"""Prediction benchmark: micro-batched vs one model call per request, side by side.

The model is the built-in baseline (HistGradientBoosting, 100 trees of depth 3, exported to
ONNX) trained on the real ETH-BTC 5m candles of ../shared/data/candles; requests carry real
feature rows of all ten files. For each concurrency (1, 100, 1,000 callers in a closed
loop: each sends its next request as soon as its previous one is answered), both
contenders run for the same time on the same event loop (uvloop when installed, as under
uvicorn) and the same 2-thread executor:

- ``batched``: `MicroBatcher.submit(row)` (the path of `/v1/predictions`): concurrent rows
  are gathered for up to `--wait-ms` or `--batch` rows and predicted in one call;
- ``per request``: ``run_in_executor(model.predict, row[None])``, one call per request.

Throughput is answered requests per second; latency is from submit to answer (p50, p99).
Run: ``.venv/bin/python -m bench predictions [--seconds 3 ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cryptopulse.importer import read_candles
from cryptopulse.ml.batcher import MicroBatcher
from cryptopulse.ml.features import feature_matrix
from cryptopulse.ml.models import OnnxModel
from cryptopulse.ml.training import TrainParams, train_baseline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
SYMBOLS = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC")

Rows = npt.NDArray[np.float32]
Call = Callable[[Rows], Awaitable[float]]


@dataclass
class Result:
    contender: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(max_iter: int) -> tuple[OnnxModel, Rows]:
    eth = list(read_candles(DATA / "ETH-BTC-5m.csv.gz", "binance:ETH-BTC", "5m"))
    trained = train_baseline(eth, TrainParams(max_iter=max_iter, folds=1))
    rows = [
        feature_matrix(
            list(read_candles(DATA / f"{s}-BTC-5m.csv.gz", f"binance:{s}-BTC", "5m"))
        ).rows
        for s in SYMBOLS
    ]
    return OnnxModel(trained.onnx, trained.features), np.concatenate(rows)


async def closed_loop(call: Call, rows: Rows, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            row = rows[i % len(rows)]
            i += concurrency
            start = time.perf_counter()
            await call(row)
            latencies.append((time.perf_counter() - start) * 1000.0)

    began = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return Result("", concurrency, len(latencies), time.perf_counter() - began, latencies)


async def run(args: argparse.Namespace, model: OnnxModel, rows: Rows) -> list[Result]:
    executor = ThreadPoolExecutor(args.threads, thread_name_prefix="bench-ml")
    loop = asyncio.get_running_loop()

    async def per_request(row: Rows) -> float:
        values = await loop.run_in_executor(executor, model.predict, row[None])
        return float(values[0])

    results: list[Result] = []
    for concurrency in args.concurrency:
        batcher = MicroBatcher(model.predict, max_batch=args.batch,
                               max_wait_s=args.wait_ms / 1000, max_queue=1_000_000,
                               executor=executor)  # fmt: skip
        for name, call in (("batched", batcher.submit), ("per request", per_request)):
            await closed_loop(call, rows, concurrency, min(0.3, args.seconds))  # warm up
            result = await closed_loop(call, rows, concurrency, args.seconds)
            result.contender = name
            results.append(result)
        await batcher.close()
    executor.shutdown()
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench predictions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--concurrency", default="1,100,1000",
                        type=lambda s: [int(x) for x in s.split(",")])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0, help="per contender and level")
    parser.add_argument("--batch", type=int, default=256, help="most rows per batch")
    parser.add_argument("--wait-ms", type=float, default=2.0, help="gathering window")
    parser.add_argument("--threads", type=int, default=2, help="executor threads")
    parser.add_argument("--max-iter", type=int, default=100, help="trees in the model")
    return parser.parse_args(argv)


def _event_loop_runner() -> Callable[[Awaitable[list[Result]]], list[Result]]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return asyncio.run  # type: ignore[return-value]
    return lambda coro: uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    model, rows = load(args.max_iter)
    results = _event_loop_runner()(run(args, model, rows))
    print(
        f"{len(rows)} real feature rows, baseline of {args.max_iter} trees (ONNX), batch ≤ "
        f"{args.batch}, window {args.wait_ms} ms, {args.threads} executor threads, "
        f"{args.seconds} s per run; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print()
    print("| concurrency | contender | requests/s | p50 ms | p99 ms | batched vs per request |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    by_level: dict[int, dict[str, Result]] = {}
    for r in results:
        by_level.setdefault(r.concurrency, {})[r.contender] = r
    for level, pair in by_level.items():
        ratio = pair["batched"].throughput / pair["per request"].throughput
        for name in ("batched", "per request"):
            r = pair[name]
            speed = f"{ratio:.1f}×" if name == "batched" else "1.0×"
            print(f"| {level:,} | {name} | {r.throughput:,.0f} | {r.pct(0.5):.2f} "
                  f"| {r.pct(0.99):.2f} | {speed} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
