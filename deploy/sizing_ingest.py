"""Ingest sizing (docs/operations.md): the pipeline fed with the 12,477 real XRP/ETH trades
of ../shared/data, publishing to the memory bus and to the Redis bus, side by side.

    .venv/bin/python deploy/sizing_ingest.py [redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import sys
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from cryptopulse.bus import Bus, MemoryBus
from cryptopulse.bus.redis import RedisBus
from cryptopulse.domain.models import Trade
from cryptopulse.pipeline import Pipeline
from cryptopulse.state import MarketState

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "trades"


def load_trades() -> list[Trade]:
    with gzip.open(DATA / "XRP-ETH-trades.csv.gz", "rt") as file:
        rows = csv.reader(file)
        next(rows)
        return [
            Trade("binance:XRP-ETH", r[1], float(r[3]), float(r[4]), r[2], int(r[0]), int(r[0]))
            for r in rows
        ]


async def timed(bus: Bus, trades: list[Trade]) -> float:
    await bus.start()
    pipeline = Pipeline(bus, MarketState())
    started = time.perf_counter()
    for trade in trades:
        await pipeline.on_trade(trade)
    if isinstance(bus, RedisBus):
        await bus.flush(120)  # every message in Redis, not just queued
    elapsed = time.perf_counter() - started
    await bus.close()
    return elapsed


async def main(url: str) -> None:
    trades = load_trades()
    for name in ("memory", "redis", "redis", "memory"):
        prefix = f"cpsizing:{uuid.uuid4().hex[:8]}:"
        bus: Bus = MemoryBus() if name == "memory" else RedisBus(url, prefix=prefix)
        elapsed = await timed(bus, trades)
        print(f"{name:6} {len(trades)} trades in {elapsed:5.2f} s: {len(trades) / elapsed:7,.0f}/s")
        if name == "redis":
            client = Redis.from_url(url)
            keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
