"""Ingestion throughput: the real captures' trade frames → our parsers → the pipeline
(candles of 6 intervals per venue and per composite, tickers, memory bus; no store),
side by side with a decode-only ceiling and cryptofeed's parsers on the same bytes.

    python -m bench ingest [--laps 400] [--repeats 5]

Contenders, each over the same list of frames (bench/_captures.py: ~119 trades a lap):

- **pipeline**: ``parse_message`` of the venue, then ``Pipeline.on_trade`` per trade,
  every trade publishing its 12 open candles (``candle_update_ms=0``);
- **pipeline (candles every 250 ms)**: the same with the conflation of open candles the
  service has by default since stop 13 (published every 250 ms of wall time), a ticker
  per trade;
- **pipeline (service defaults: + tickers every 100 ms)**: also the ticker throttle the
  service has by default since stop 18 (a ticker channel publishes at most every 100 ms
  of wall time; at replay speed nearly every ticker waits, as on a busy live channel);
- **parsers only**: our parsers, no pipeline (where the time goes);
- **orjson / msgspec decode-only**: ``orjson.loads`` / ``msgspec.json.decode`` of each
  frame, nothing else: the ceiling for anything that has to read the bytes;
- **cryptofeed**: its feeds' handlers (bench/_cryptofeed.py), trades to an async callback.

Each repetition runs every contender once, in turn, so they share the machine's mood;
wall time (perf_counter) and CPU time (process_time) are both reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence

import msgspec
import orjson

from bench._captures import Frame, laps, load_trade_frames
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.pipeline import Pipeline
from cryptopulse.sources import binance, coinbase
from cryptopulse.sources.kraken import KrakenParser
from cryptopulse.state import MarketState

Parse = Callable[[bytes, int], list[Trade | Ticker]]


def _parsers() -> dict[str, Parse]:
    return {
        "coinbase": coinbase.parse_message,
        "binance": binance.parse_message,
        "kraken": KrakenParser().parse,
    }


def run_pipeline(
    frames: Sequence[Frame], candle_update_ms: int = 0, ticker_update_ms: int = 0
) -> int:
    """Parse every frame and feed its trades to a fresh pipeline; returns the trade count.
    With `candle_update_ms` (`ticker_update_ms`), open candles (tickers) are conflated as
    the service does: published every that many ms of wall time (checked between frames,
    as a timer would fire)."""
    pipeline = Pipeline(
        MemoryBus(history=1000),
        MarketState(),
        candle_update_ms=candle_update_ms,
        ticker_update_ms=ticker_update_ms,
    )
    parsers = _parsers()
    period = candle_update_ms / 1000
    ticker_period = ticker_update_ms / 1000

    async def go() -> None:
        on_trade = pipeline.on_trade
        clock = time.perf_counter
        due = clock() + period
        tickers_due = clock() + ticker_period
        for frame in frames:
            for event in parsers[frame.exchange](frame.raw, frame.received_ms):
                await on_trade(event)  # type: ignore[arg-type]  # trade frames only
            if period and clock() >= due:
                await pipeline.publish_updates()
                due = clock() + period
            if ticker_period and clock() >= tickers_due:
                await pipeline.publish_tickers()
                tickers_due = clock() + ticker_period
        if period:
            await pipeline.publish_updates()
        if ticker_period:
            await pipeline.publish_tickers()

    asyncio.run(go())
    return pipeline.stats.trades


def run_pipeline_conflated(frames: Sequence[Frame]) -> int:
    return run_pipeline(frames, 250)


def run_pipeline_defaults(frames: Sequence[Frame]) -> int:
    return run_pipeline(frames, 250, 100)


def run_parsers(frames: Sequence[Frame]) -> int:
    parsers = _parsers()
    count = 0
    for frame in frames:
        count += len(parsers[frame.exchange](frame.raw, frame.received_ms))
    return count


def run_orjson(frames: Sequence[Frame]) -> int:
    loads = orjson.loads
    for frame in frames:
        loads(frame.raw)
    return 0


def run_msgspec(frames: Sequence[Frame]) -> int:
    decode = msgspec.json.Decoder().decode
    for frame in frames:
        decode(frame.raw)
    return 0


def run_cryptofeed(frames: Sequence[Frame]) -> int:
    from bench import _cryptofeed

    count = [0]
    asyncio.run(_cryptofeed.run(list(frames), count))
    return count[0]


CONTENDERS: dict[str, Callable[[Sequence[Frame]], int]] = {
    "pipeline": run_pipeline,
    "pipeline (candles every 250 ms)": run_pipeline_conflated,
    "pipeline (service defaults: + tickers every 100 ms)": run_pipeline_defaults,
    "parsers only": run_parsers,
    "orjson decode-only": run_orjson,
    "msgspec decode-only": run_msgspec,
    "cryptofeed": run_cryptofeed,
}


def measure(
    frames: Sequence[Frame], names: Sequence[str], repeats: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall s, CPU s) per repetition per contender, contenders interleaved."""
    out: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for _ in range(repeats):
        for name in names:
            w0, c0 = time.perf_counter(), time.process_time()
            CONTENDERS[name](frames)
            out[name].append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def _ratio(x: float) -> str:
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.4f}× (1/{1 / x:.0f})"


def _row(name: str, runs: list[tuple[float, float]], trades: int, ref: dict[str, float]) -> str:
    rates = [trades / w for w, _ in runs]
    cpu_us = [c / trades * 1e6 for _, c in runs]
    rate = statistics.median(rates)
    ratios = " | ".join(_ratio(rate / r) for r in ref.values())
    return (
        f"| {name} | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) "
        f"| {statistics.median(cpu_us):.2f} ({min(cpu_us):.2f}–{max(cpu_us):.2f}) | {ratios} |"
    )


def report(results: dict[str, list[tuple[float, float]]], trades: int) -> str:
    """A markdown table: trades/s (median, min–max), CPU µs per trade, ratios."""
    medians = {n: trades / statistics.median(w for w, _ in r) for n, r in results.items()}
    ref = {n: medians[n] for n in ("msgspec decode-only", "cryptofeed") if n in medians}
    head = " | ".join(f"vs {n}" for n in ref)
    lines = [
        f"| contender | trades/s (min–max) | CPU µs per trade (min–max) | {head} |",
        "| --- | ---: | ---: |" + " ---: |" * len(ref),
    ]
    lines += [_row(n, r, trades, ref) for n, r in results.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__)
    parser.add_argument("--laps", type=int, default=400, help="capture laps per repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    frames = laps(load_trade_frames(), args.laps)
    trades = run_parsers(frames)
    assert run_pipeline(frames) == trades, "the pipeline dropped trades (duplicates or late)"
    print(f"{len(frames):,} frames, {trades:,} trades per repetition, {args.repeats} repetitions")
    print(report(measure(frames, names, args.repeats), trades))
    return 0
