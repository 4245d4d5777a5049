"""Serialization of 1 and 100 candles: our wire paths vs msgspec and a pydantic round trip.

    python -m bench serialization [--repeats 7] [--number 2000]

The candles are real (the first ones of ../shared/data/candles/ETH-BTC-5m.csv.gz).

- **ours, bus frame (1 candle)**: the pipeline's encoder of a ``Candle`` record (a frozen
  ``msgspec.Struct`` since stop 18), what it publishes for every candle update;
- **ours, REST page**: what ``GET /v1/candles/{i}`` builds from the store's candles
  (``candle_page_bytes`` in api/routers/market.py: a Struct per candle, msgspec-encoded);
- **msgspec Struct encode** (the ceiling): the same fields as a ``msgspec.Struct``, encoded
  by a reused ``msgspec.json.Encoder``;
- **pydantic** (the typical peer): ``json.dumps(CandlePage(...).model_dump())``, a response
  model built per request as a straightforward FastAPI route would.

Each repetition times every contender in turn (best-of is not used: medians and spread).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from cryptopulse.api.routers.market import candle_page_bytes
from cryptopulse.api.schemas import CandleOut, CandlePage
from cryptopulse.domain.models import Candle
from cryptopulse.pipeline import record_json

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"


class CandleStruct(msgspec.Struct):
    """The REST candle fields as a msgspec Struct."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    closed: bool


class PageStruct(msgspec.Struct):
    instrument: str
    interval: str
    source: str | None
    data: list[CandleStruct]
    next_cursor: str | None


def load_candles(count: int) -> list[Candle]:
    """The first `count` real 5m candles of ETH-BTC as domain candles."""
    out: list[Candle] = []
    with gzip.open(CANDLES / "ETH-BTC-5m.csv.gz", "rt") as f:
        for row in csv.reader(f):
            if not row or not row[0].isdigit():
                continue
            t, o, h, lo, c, v = int(row[0]), *map(float, row[1:6])
            out.append(Candle("binance:ETH-BTC", "5m", t, o, h, lo, c, v, v * c, 100, True))
            if len(out) == count:
                break
    return out


def contenders(candles: Sequence[Candle]) -> dict[str, Callable[[], bytes]]:
    """The four ways to put `candles` on the wire, each a no-argument callable."""
    encode = msgspec.json.Encoder().encode
    fields = [
        (c.open_time, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades, True)
        for c in candles
    ]

    rows = list(candles)

    def ours() -> bytes:
        if len(rows) == 1:
            return record_json(rows[0])
        return candle_page_bytes("binance:ETH-BTC", "5m", "replay", rows, None)

    def ceiling() -> bytes:
        data = [CandleStruct(*f) for f in fields]
        if len(candles) == 1:
            return encode(data[0])
        return encode(PageStruct("binance:ETH-BTC", "5m", "replay", data, None))

    def peer() -> bytes:
        page = CandlePage(
            instrument="binance:ETH-BTC",
            interval="5m",
            source="replay",
            data=[
                CandleOut(**dict(zip(CandleStruct.__struct_fields__, f, strict=True)))
                for f in fields
            ],
            next_cursor=None,
        )
        if len(candles) == 1:
            return json.dumps(page.data[0].model_dump()).encode()
        return json.dumps(page.model_dump()).encode()

    return {"ours": ours, "msgspec Struct encode": ceiling, "pydantic model_dump + json": peer}


def measure(candles: Sequence[Candle], repeats: int, number: int) -> dict[str, list[float]]:
    """µs per call, one list entry per repetition, contenders interleaved."""
    table = contenders(candles)
    out: dict[str, list[float]] = {n: [] for n in table}
    for _ in range(repeats):
        for name, fn in table.items():
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            out[name].append((time.perf_counter() - t0) / number * 1e6)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serialization", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000, help="calls per repetition")
    args = parser.parse_args(argv)
    print("| candles | contender | µs per call (min–max) | vs msgspec |")
    print("| ---: | --- | ---: | ---: |")
    for count in (1, 100):
        results = measure(load_candles(count), args.repeats, max(1, args.number // count))
        ceiling = statistics.median(results["msgspec Struct encode"])
        for name, runs in results.items():
            med = statistics.median(runs)
            print(
                f"| {count} | {name} | {med:.2f} ({min(runs):.2f}–{max(runs):.2f}) "
                f"| {med / ceiling:.2f}× |"
            )
    return 0
