"""Indicator benchmark: µs per incremental update of the full indicator set, side by side.

For N instruments (real 5m candles from ../shared/data/candles, each instrument a different
file and start), every contender processes the same closed candles round-robin, as the live
pipeline does:

- ``cryptopulse``: `IndicatorSet.update` (14 indicators, 23 outputs), O(1) per candle;
- ``ta-lib recompute``: TA-Lib over the last `window` candles for every update (VWAP and
  volatility, which TA-Lib lacks, with numpy over the same window);
- ``talipp``: talipp's incremental indicators (``add`` per candle).

Each repetition times `updates` rounds over all instruments, wall clock and CPU time;
the table gives the median and the min–max spread over the repetitions. CPU time (this
process only) is the headline figure: on a shared machine wall time also counts waiting.
Run: ``make bench`` or ``.venv/bin/python -m bench [--instruments 500 ...]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryptopulse.domain.indicators import IndicatorParams, IndicatorSet
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle
from cryptopulse.importer import read_candles

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
INDICATORS = 14  # sma, 2 ema, wma, rsi, macd, bb, atr, adx, stoch, obv, vwap, donchian, vol
STRIDE = 50  # candles between the starts of two instruments drawn from the same file


@dataclass
class Timing:
    """Per-repetition cost of one full-set update, in µs."""

    name: str
    wall_us: list[float]
    cpu_us: list[float]

    def row(self, fastest_cpu: float) -> str:
        wall, cpu = statistics.median(self.wall_us), statistics.median(self.cpu_us)
        return (
            f"| {self.name} | {wall:.2f} ({min(self.wall_us):.2f}–{max(self.wall_us):.2f}) "
            f"| {cpu:.2f} ({min(self.cpu_us):.2f}–{max(self.cpu_us):.2f}) "
            f"| {cpu / INDICATORS:.3f} | {cpu / fastest_cpu:.1f}× |"
        )


def load_streams(instruments: int, length: int) -> list[list[Candle]]:
    """`instruments` candle streams of `length`, cycling the files with shifted starts."""
    files = sorted(DATA.glob("*-5m.csv.gz"))
    if not files:
        raise SystemExit(f"no candle files in {DATA}")
    series = [list(read_candles(f, "bench:" + f.name.split("-5m")[0], "5m")) for f in files]
    streams = []
    for i in range(instruments):
        start = (i // len(files)) * STRIDE
        stream = series[i % len(files)][start : start + length]
        if len(stream) < length:
            raise SystemExit("not enough candles: fewer instruments, updates or repeats")
        streams.append(stream)
    return streams


def _timed(rounds: Callable[[int], None], starts: Sequence[int]) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for start in starts:
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        rounds(start)
        walls.append(time.perf_counter_ns() - w0)
        cpus.append(time.process_time_ns() - c0)
    return walls, cpus


def bench_ours(streams: list[list[Candle]], first: int, updates: int, repeats: int) -> Timing:
    sets = [IndicatorSet() for _ in streams]
    warm = first - 200  # steady state long before: only the last 200 candles matter
    for s, stream in zip(sets, streams, strict=True):
        for candle in stream[warm:first]:
            s.update(candle)
    pairs = list(zip(sets, streams, strict=True))

    def rounds(start: int) -> None:
        for t in range(start, start + updates):
            for s, stream in pairs:
                s.update(stream[t])

    walls, cpus = _timed(rounds, [first + r * updates for r in range(repeats)])
    n = updates * len(streams)
    return Timing(
        "cryptopulse (incremental)", [w / n / 1e3 for w in walls], [c / n / 1e3 for c in cpus]
    )


def _talib_set(window: int) -> Callable[[dict[str, np.ndarray], int], None]:
    import talib

    p = IndicatorParams()
    session = INTERVALS[p.vwap_session]

    def recompute(a: dict[str, np.ndarray], t: int) -> None:
        lo = t + 1 - window
        h, low, c = a["high"][lo : t + 1], a["low"][lo : t + 1], a["close"][lo : t + 1]
        v, times = a["volume"][lo : t + 1], a["time"][lo : t + 1]
        talib.SMA(c, p.sma)
        talib.EMA(c, p.ema_fast)
        talib.EMA(c, p.ema_slow)
        talib.WMA(c, p.wma)
        talib.RSI(c, p.rsi)
        talib.MACD(c, *p.macd)
        talib.BBANDS(c, p.bb[0], p.bb[1], p.bb[1], 0)
        talib.ATR(h, low, c, p.atr)
        talib.ADX(h, low, c, p.adx)
        talib.PLUS_DI(h, low, c, p.adx)
        talib.MINUS_DI(h, low, c, p.adx)
        talib.STOCH(h, low, c, p.stoch[0], p.stoch[1], 0, p.stoch[2], 0)
        talib.OBV(c, v)
        talib.MAX(h, p.donchian)
        talib.MIN(low, p.donchian)
        # No VWAP or rolling volatility in TA-Lib: numpy over the same window.
        i = int(np.searchsorted(times, times[-1] - times[-1] % session))
        float(((h[i:] + low[i:] + c[i:]) / 3 * v[i:]).sum() / v[i:].sum())
        float(np.std(np.diff(np.log(c[-p.volatility - 1 :])), ddof=1))

    return recompute


def bench_talib(
    streams: list[list[Candle]], first: int, updates: int, repeats: int, window: int
) -> Timing:
    arrays = [
        {
            "high": np.array([c.high for c in s]),
            "low": np.array([c.low for c in s]),
            "close": np.array([c.close for c in s]),
            "volume": np.array([c.volume for c in s]),
            "time": np.array([c.open_time for c in s]),
        }
        for s in streams
    ]
    recompute = _talib_set(window)

    def rounds(start: int) -> None:
        for t in range(start, start + updates):
            for a in arrays:
                recompute(a, t)

    walls, cpus = _timed(rounds, [first + r * updates for r in range(repeats)])
    n = updates * len(streams)
    return Timing(
        f"TA-Lib recompute ({window} candles)",
        [w / n / 1e3 for w in walls],
        [c / n / 1e3 for c in cpus],
    )


class _TalippSet:
    """The same indicators in talipp (its Stoch smooths %K once; volatility is its StdDev
    of log returns)."""

    def __init__(self) -> None:
        from talipp import indicators as ti

        p = IndicatorParams()
        self.closes = [
            ti.SMA(p.sma),
            ti.EMA(p.ema_fast),
            ti.EMA(p.ema_slow),
            ti.WMA(p.wma),
            ti.RSI(p.rsi),
            ti.MACD(*p.macd),
            ti.BB(p.bb[0], p.bb[1]),
        ]
        self.bars = [
            ti.ATR(p.atr),
            ti.ADX(p.adx, p.adx),
            ti.Stoch(p.stoch[0], p.stoch[2]),
            ti.OBV(),
            ti.VWAP(),
            ti.DonchianChannels(p.donchian),
        ]
        self.volatility = ti.StdDev(p.volatility)
        self.prev: float | None = None

    def add(self, candle: Candle) -> None:
        from talipp.ohlcv import OHLCV

        c = candle.close
        for ind in self.closes:
            ind.add(c)
        bar = OHLCV(candle.open, candle.high, candle.low, c, candle.volume)
        for ind in self.bars:
            ind.add(bar)
        if self.prev is not None:
            self.volatility.add(math.log(c / self.prev))
        self.prev = c


def bench_talipp(streams: list[list[Candle]], first: int, updates: int, repeats: int) -> Timing:
    sets = [_TalippSet() for _ in streams]
    for s, stream in zip(sets, streams, strict=True):
        for candle in stream[first - 200 : first]:
            s.add(candle)
    pairs = list(zip(sets, streams, strict=True))

    def rounds(start: int) -> None:
        for t in range(start, start + updates):
            for s, stream in pairs:
                s.add(stream[t])

    walls, cpus = _timed(rounds, [first + r * updates for r in range(repeats)])
    n = updates * len(streams)
    return Timing("talipp (incremental)", [w / n / 1e3 for w in walls], [c / n / 1e3 for c in cpus])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--instruments", type=int, default=500)
    ap.add_argument("--updates", type=int, default=40, help="rounds per repetition")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window", type=int, default=1000, help="TA-Lib recompute window")
    ap.add_argument(
        "--contenders",
        default="cryptopulse,talib,talipp",
        help="comma-separated subset of cryptopulse,talib,talipp (cryptopulse always runs)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run all three contenders and print a Markdown table (docs/benchmarks.md)."""
    args = parse_args(argv)
    first = max(args.window, 200)
    streams = load_streams(args.instruments, first + args.updates * args.repeats)
    chosen = set(args.contenders.split(","))
    results = [bench_ours(streams, first, args.updates, args.repeats)]
    if "talib" in chosen:
        results.append(bench_talib(streams, first, args.updates, args.repeats, args.window))
    if "talipp" in chosen:
        results.append(bench_talipp(streams, first, args.updates, args.repeats))
    fastest = statistics.median(results[0].cpu_us)
    print(
        f"{args.instruments} instruments × {args.updates} updates × {args.repeats} repetitions; "
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print()
    print(
        "| contender | wall µs per full-set update, median (min–max) "
        "| CPU µs per full-set update, median (min–max) "
        f"| CPU µs per indicator update ({INDICATORS} indicators) | CPU time vs cryptopulse |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(r.row(fastest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
