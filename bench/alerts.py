"""Alert-rule evaluation cost per trade: 10,000 price-cross rules on 100 instruments under
the replayed trade flow, the indexed `AlertBook` side by side with a linear scan.

The flow is the real Binance XRP/ETH trades (../shared/data/trades, 12,477 trades); each of
the 100 instruments replays it with its own price scale and the trades are interleaved by
time, so every instrument sees the real tick-by-tick moves. Each instrument carries 100
rules with levels spread over its price range (up, down and either; recurring), so the
flow crosses levels and rules fire. The figure is nanoseconds per trade on the instrument
the trade belongs to ("per trade per matching instrument").

    python -m bench alerts [--rules 10000] [--instruments 100] [--repeat 3]

The linear scan is ~100x slower, so it runs on the first `--baseline-share` of the flow
(10 %), and the index runs on that slice too to check that both fire the same rules.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from cryptopulse.domain.alerts import AlertBook, Rule

TRADES = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "trades"
    / "XRP-ETH-trades.csv.gz"
)


def load_prices() -> list[tuple[int, float]]:
    """(time ms, price) of the real trades, in time order."""
    with gzip.open(TRADES, "rt") as f:
        rows = [(int(r[0]), float(r[3])) for r in csv.reader(f) if r and r[0].isdigit()]
    rows.sort()
    return rows


def flow(prices: list[tuple[int, float]], instruments: int) -> list[tuple[str, float, int]]:
    """The trades of every instrument, interleaved by time (instrument i: price x (1 + i))."""
    out = []
    for t, p in prices:
        for i in range(instruments):
            out.append((f"bench:I{i:03d}-USD", p * (1 + i), t))
    return out


def make_rules(prices: list[tuple[int, float]], rules: int, instruments: int) -> list[Rule]:
    rng = random.Random(42)
    lo = min(p for _, p in prices)
    hi = max(p for _, p in prices)
    out = []
    for n in range(rules):
        i = n % instruments
        level = rng.uniform(lo, hi) * (1 + i)
        direction = rng.choice(["up", "down", "either"])
        params = {"instrument": f"bench:I{i:03d}-USD", "level": level, "direction": direction}
        out.append(Rule(f"r{n}", "acct", "price_cross", params, cooldown_ms=60_000))
    return out


class LinearScan:
    """The baseline: every rule of the instrument checked against every trade."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.by_instrument: dict[str, list[Rule]] = {}
        for rule in rules:
            self.by_instrument.setdefault(rule.params["instrument"], []).append(rule)
        self.last: dict[str, float] = {}
        self.fired = 0

    def on_price(self, instrument: str, price: float, time: int) -> None:
        rules = self.by_instrument.get(instrument)
        last = self.last.get(instrument)
        self.last[instrument] = price
        if not rules or last is None:
            return
        for rule in rules:
            level = rule.params["level"]
            up = last < level <= price
            down = price <= level < last
            direction = rule.params["direction"]
            if (up and direction != "down") or (down and direction != "up"):
                if rule.ready(time):
                    rule.last_fired = time
                    self.fired += 1


def run_book(trades: list[tuple[str, float, int]], rules: list[Rule]) -> tuple[float, int]:
    book = AlertBook()
    for rule in rules:
        book.add(Rule(rule.id, rule.account, rule.kind, dict(rule.params), rule.cooldown_ms))
    on_price = book.on_price
    fired = 0
    start = time.perf_counter()
    for instrument, price, t in trades:
        on_price(instrument, price, t)
        if book.fired:
            fired += len(book.fired)
            book.fired.clear()
    return time.perf_counter() - start, fired


def run_linear(trades: list[tuple[str, float, int]], rules: list[Rule]) -> tuple[float, int]:
    scan = LinearScan([Rule(r.id, r.account, r.kind, dict(r.params), r.cooldown_ms) for r in rules])
    on_price = scan.on_price
    start = time.perf_counter()
    for instrument, price, t in trades:
        on_price(instrument, price, t)
    return time.perf_counter() - start, scan.fired


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench alerts", description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--instruments", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-share", type=float, default=0.1)
    args = ap.parse_args(argv)
    prices = load_prices()
    trades = flow(prices, args.instruments)
    part = trades[: max(1, int(len(trades) * args.baseline_share))]
    rules = make_rules(prices, args.rules, args.instruments)
    runs = (
        ("indexed (AlertBook)", run_book, trades),
        ("indexed, baseline slice", run_book, part),
        ("linear scan, slice", run_linear, part),
    )
    results: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    fired: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, runner, flow_ in runs:
            seconds, count = runner(flow_, rules)
            results[name].append(seconds / len(flow_) * 1e9)
            fired[name] = count
    print(
        f"{args.rules} price-cross rules on {args.instruments} instruments, "
        f"{len(trades)} trades ({len(prices)} real trades x {args.instruments}; slice "
        f"{len(part)}), best of {args.repeat}"
    )
    print(f"{'':26} {'ns/trade (best)':>16} {'median':>10} {'firings':>10}")
    for name, values in results.items():
        best, median = min(values), statistics.median(values)
        print(f"{name:26} {best:16.0f} {median:10.0f} {fired[name]:10d}")
    if fired["indexed, baseline slice"] != fired["linear scan, slice"]:
        print("MISMATCH: the index and the scan fired differently")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
