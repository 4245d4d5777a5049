"""Importing history from CSV files (plain or gzip) into the store.

Trades go through the same `Pipeline` the live path uses (candles of every interval, the
composite pair, dedupe), so an imported day and a live day are built by one code path.
Candles are upserted as they are.

Nothing is half-written because of a bad row: every file is read and checked in full
before the first write, and the error names the line.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain.instruments import (
    INTERVALS,
    InvalidInstrument,
    parse_instrument,
)
from cryptopulse.domain.models import Candle, Ticker, Trade
from cryptopulse.pipeline import Pipeline
from cryptopulse.sources.base import now_ms
from cryptopulse.state import MarketState
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.writer import StoreWriter

__all__ = [
    "TRADE_COLUMNS",
    "CANDLE_COLUMNS",
    "CandleImport",
    "ImportFileError",
    "Progress",
    "StoreFeed",
    "TradeImport",
    "count_candles",
    "import_candles",
    "import_trades",
    "read_candles",
    "read_trades",
    "venue_instrument",
]

TRADE_COLUMNS = ("time_ms", "trade_id", "side", "price", "amount")
CANDLE_COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")
_BATCH = 5_000  # rows parsed per hop to the worker thread

# Called with (phase, bytes done, bytes total) as a file is read; phase is "checking"
# (the validation pass) or "importing".
Progress = Callable[[str, int, int], None]


class ImportFileError(ValueError):
    """The file cannot be imported. `line` is the 1-based line of the first bad row."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class TradeImport:
    instrument: str
    rows: int
    trades: int
    duplicates: int
    late: int
    candles: dict[str, int] = field(default_factory=dict)  # interval -> candles in the store


@dataclass(frozen=True, slots=True)
class CandleImport:
    instrument: str
    interval: str
    candles: int


def venue_instrument(text: str) -> str:
    """The canonical `exchange:BASE-QUOTE` name; a composite or bad name is a ValueError."""
    inst = parse_instrument(text)
    if inst.exchange is None:
        raise InvalidInstrument(f"{text!r} has no exchange: use EXCHANGE:BASE-QUOTE")
    return str(inst)


# --- reading ---------------------------------------------------------------------------


@contextmanager
def _open_csv(path: Path) -> Iterator[tuple[IO[str], IO[bytes]]]:
    """Text of a plain or gzip file (by its magic bytes, not its name), and the raw file
    whose position measures progress."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        binary = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            yield text, raw
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            # Broken gzip streams and non-UTF-8 bytes: say so plainly, not as a traceback.
            raise ImportFileError(path, f"unreadable file ({exc})") from exc


def _rows(
    path: Path, columns: tuple[str, ...], phase: str, progress: Progress | None
) -> Iterator[tuple[int, list[str]]]:
    """(line number, values in `columns` order) for each data row; header checked first."""
    total = path.stat().st_size
    with _open_csv(path) as (text, raw):
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            raise ImportFileError(path, "the file is empty", 1)
        names = [h.strip().lower() for h in header]
        missing = [c for c in columns if c not in names]
        if missing:
            raise ImportFileError(
                path, f"header lacks column(s) {', '.join(missing)}; need {','.join(columns)}", 1
            )
        index = [names.index(c) for c in columns]
        width = max(index) + 1
        for n, row in enumerate(reader):
            if not row:
                continue  # a blank line
            if len(row) < width:
                raise ImportFileError(
                    path, f"expected {len(names)} fields, got {len(row)}", reader.line_num
                )
            yield reader.line_num, [row[i].strip() for i in index]
            if progress is not None and n % 2_000 == 0:
                progress(phase, raw.tell(), total)
        if progress is not None:
            progress(phase, total, total)


def _number(path: Path, line: int, name: str, text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ImportFileError(path, f"{name} {text!r} is not a number", line) from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "a positive" if positive else "a non-negative"
        raise ImportFileError(path, f"{name} {text!r} must be {need} finite number", line)
    return value


def _time(path: Path, line: int, name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ImportFileError(path, f"{name} {text!r} is not an integer (ms)", line) from None
    if value < 0:
        raise ImportFileError(path, f"{name} {text!r} is negative", line)
    return value


def read_trades(
    path: Path, instrument: str, progress: Progress | None = None, phase: str = "checking"
) -> Iterator[Trade]:
    """Trades of a `time_ms,trade_id,side,price,amount` file, checked row by row.

    `received` is set to the trade's own time: an import has no receipt time.
    """
    for line, (time_s, trade_id, side, price_s, amount_s) in _rows(
        path, TRADE_COLUMNS, phase, progress
    ):
        time = _time(path, line, "time_ms", time_s)
        if not trade_id:
            raise ImportFileError(path, "trade_id is empty", line)
        side = side.lower()
        if side not in ("buy", "sell"):
            raise ImportFileError(path, f"side {side!r} is not buy or sell", line)
        price = _number(path, line, "price", price_s, positive=True)
        amount = _number(path, line, "amount", amount_s, positive=True)
        yield Trade(
            instrument, trade_id, price, amount, "buy" if side == "buy" else "sell", time, time
        )


def read_candles(
    path: Path, instrument: str, interval: str, progress: Progress | None = None
) -> Iterator[Candle]:
    """Closed candles of an `open_time_ms,open,high,low,close,volume` file, checked.

    `quote_volume` is estimated as volume x typical price (high + low + close) / 3, the
    usual stand-in for a candle's average price; `trades` is 0 (unknown).
    """
    length = INTERVALS[interval]
    seen: set[int] = set()
    for line, values in _rows(path, CANDLE_COLUMNS, "checking", progress):
        open_time = _time(path, line, "open_time_ms", values[0])
        o, h, low, c = (
            _number(path, line, name, text, positive=True)
            for name, text in zip(CANDLE_COLUMNS[1:5], values[1:5], strict=True)
        )
        volume = _number(path, line, "volume", values[5], positive=False)
        if open_time % length:
            raise ImportFileError(
                path, f"open_time_ms {open_time} is not on a {interval} boundary", line
            )
        if open_time in seen:
            raise ImportFileError(path, f"a second candle for open_time_ms {open_time}", line)
        if not low <= min(o, c) <= max(o, c) <= h:
            raise ImportFileError(path, "needs low <= open, close <= high", line)
        seen.add(open_time)
        quote_volume = volume * (h + low + c) / 3
        yield Candle(instrument, interval, open_time, o, h, low, c, volume, quote_volume, 0, True)


# --- writing ---------------------------------------------------------------------------


class StoreFeed:
    """Event sink for offline feeds (import, replay): the live `Pipeline` over a store
    writer, flushed whenever a batch fills rather than on a timer, so nothing is dropped
    however fast events come."""

    def __init__(self, store: SQLStore, batch_size: int = _BATCH) -> None:
        self.writer = StoreWriter(store, batch_size=batch_size)
        self.state = MarketState()
        # Nobody subscribes offline: a one-message history keeps memory flat.
        self.pipeline = Pipeline(MemoryBus(history=1), self.state, self.writer)
        self._batch_size = batch_size

    async def on_trade(self, trade: Trade) -> None:
        await self.pipeline.on_trade(trade)
        if self.writer.pending >= self._batch_size:
            await self.writer.flush()

    async def on_ticker(self, ticker: Ticker) -> None:
        await self.pipeline.on_ticker(ticker)

    async def finish(self) -> None:
        """Close every candle whose interval has ended by the wall clock (history has), keep
        the rest as open candles, and write everything."""
        await self.pipeline.close_due(now_ms())
        self.pipeline.flush_open()
        await self.writer.flush()


def _check_trades(path: Path, instrument: str, progress: Progress | None) -> tuple[int, bool]:
    """Validate every row; return the row count and whether times never go backwards."""
    rows, in_order, newest = 0, True, -1
    for trade in read_trades(path, instrument, progress, "checking"):
        rows += 1
        if trade.time < newest:
            in_order = False
        newest = max(newest, trade.time)
    return rows, in_order


def _take(trades: Iterator[Trade], n: int) -> list[Trade]:
    return list(islice(trades, n))


def _by_time(path: Path, instrument: str, progress: Progress | None) -> Iterator[Trade]:
    # Out of order across buckets, the pipeline would drop trades as late: sort first
    # (stable, so equal times keep file order). This holds the file in memory.
    trades = list(read_trades(path, instrument, progress, "importing"))
    trades.sort(key=lambda t: t.time)
    return iter(trades)


async def import_trades(
    store: SQLStore, path: Path, instrument: str, *, progress: Progress | None = None
) -> TradeImport:
    """Import a trades CSV for one venue instrument; candles of every interval follow."""
    instrument = venue_instrument(instrument)
    rows, in_order = await asyncio.to_thread(_check_trades, path, instrument, progress)
    feed = StoreFeed(store)
    if in_order:
        trades = read_trades(path, instrument, progress, "importing")
    else:
        trades = await asyncio.to_thread(_by_time, path, instrument, progress)
    # Parse in a worker thread, a batch at a time, so the event loop never waits on disk.
    while batch := await asyncio.to_thread(_take, trades, _BATCH):
        for trade in batch:
            await feed.on_trade(trade)
    await feed.finish()
    await store.record_instruments([instrument], "import", now_ms())
    agg = feed.pipeline.aggregator(instrument)
    return TradeImport(
        instrument,
        rows,
        feed.pipeline.stats.trades,
        feed.pipeline.stats.duplicates,
        max(agg.late.values(), default=0),
        await count_candles(store, instrument),
    )


async def import_candles(
    store: SQLStore,
    path: Path,
    instrument: str,
    interval: str,
    *,
    progress: Progress | None = None,
) -> CandleImport:
    """Upsert a candles CSV of one interval, all rows in one transaction."""
    instrument = venue_instrument(instrument)
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    rows = await asyncio.to_thread(lambda: list(read_candles(path, instrument, interval, progress)))
    await store.upsert_candles(rows)
    await store.record_instruments([instrument], "import", now_ms())
    return CandleImport(instrument, interval, len(rows))


async def count_candles(store: SQLStore, instrument: str) -> dict[str, int]:
    """Candles stored per interval for one instrument (see SQLStore.count_candles)."""
    return await store.count_candles(instrument)
