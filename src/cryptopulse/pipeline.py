"""Wires the pure domain steps to the bus, the store writer and the in-memory state.

The pipeline is the event sink of every source. Per trade: dedupe and candles for the
venue instrument, candles and a composite ticker for the pair, one store append, and one
bus message per changed channel. Nothing here blocks or waits on I/O except bus publish.

Open candles are conflated when `candle_update_ms` > 0 (the service's default, 250 ms):
a trade updates its buckets and marks the aggregator changed; `publish_updates`, on a
timer, publishes each changed aggregator's open candles once, as they stand. A candle's
close is published at once, before any update of the next bucket. With 0, every trade
publishes its 12 open candles (the importer and tests that count frames).

Tickers are throttled per channel when `ticker_update_ms` > 0 (the service's default,
100 ms): a ticker is published at once unless its channel published one less than
`ticker_update_ms` ago; then it waits, the newest replacing any older one waiting, and
`publish_tickers`, on a timer of the same period, publishes what waits. A change after a
quiet spell goes out at once, a busy channel carries one ticker per period, and no ticker
waits longer than a period. The market state and the price hooks see every ticker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from cryptopulse.bus.base import Bus
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain.candles import DEFAULT_INTERVALS, CandleAggregator
from cryptopulse.domain.composite import CompositeBook
from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Candle, Ticker, Trade
from cryptopulse.state import MarketState
from cryptopulse.store.writer import StoreWriter

log = logging.getLogger(__name__)

# Aggregators whose open candles `publish_updates` publishes between two yields to the loop
# (12 candles each: ~1–2 ms of work).
UPDATE_SLICE = 64
# Ingest gives the loop back at least this often, however many trades a source hands over
# back to back (a reconnect's catch-up, one socket read of many frames): the requests and
# stream frames waiting meanwhile wait this long at most, not for the whole burst.
INGEST_SLICE_S = 0.002
_clock = time.perf_counter


@dataclass(slots=True)
class PipelineStats:
    trades: int = 0
    tickers: int = 0
    duplicates: int = 0
    late: int = 0
    candles_closed: int = 0


# The records' JSON (msgspec.json: a Struct in a third of orjson's time for a dataclass).
record_json = msgspec.json.Encoder().encode


@dataclass(slots=True)
class _Route:
    """Where one venue instrument's trades go, worked out once per instrument."""

    candles: CandleAggregator
    pair: str
    pair_candles: CandleAggregator
    trades_channel: str
    ticker_channel: str


class Pipeline:
    def __init__(
        self,
        bus: Bus,
        state: MarketState,
        writer: StoreWriter | None = None,
        *,
        intervals: tuple[str, ...] = DEFAULT_INTERVALS,
        composite_stale_ms: int = 60_000,
        fold_stablecoins: bool = False,
        candle_update_ms: int = 0,
        ticker_update_ms: int = 0,
    ) -> None:
        self.bus = bus
        self.state = state
        self.writer = writer
        self.intervals = intervals
        self.fold_stablecoins = fold_stablecoins
        self.composite = CompositeBook(stale_ms=composite_stale_ms)
        self._venue_candles: dict[str, CandleAggregator] = {}
        self._pair_candles: dict[str, CandleAggregator] = {}
        self._routes: dict[str, _Route] = {}  # venue instrument -> its route
        self.candle_update_ms = candle_update_ms
        # Aggregators whose open candles changed since `publish_updates` (an ordered set).
        self._changed: dict[CandleAggregator, None] = {}
        self.ticker_update_ms = ticker_update_ms
        self._ticker_period = ticker_update_ms / 1000
        # Ticker channel -> until when (perf_counter) a new ticker waits instead; and the
        # newest ticker waiting per channel, in the order they started waiting.
        self._ticker_quiet: dict[str, float] = {}
        self._tickers_due: dict[str, Ticker] = {}
        # The memory bus publishes without awaiting anything: calling it directly saves a
        # coroutine per message (~15 per trade).
        self._publish_now = bus.publish_nowait if isinstance(bus, MemoryBus) else None
        self.stats = PipelineStats()
        # Awaited with every closed candle after it is published (analytics hooks in here).
        self.closed_candle_hooks: list[Callable[[Candle], Awaitable[None]]] = []
        # Called (not awaited: evaluation only) with every new last price (alert rules).
        self.price_hooks: list[Callable[[str, float, int], None]] = []
        self._yielded = _clock()  # when ingest last gave the loop back

    async def _take_turns(self) -> None:
        """Yield to the loop if ingest has held it for `INGEST_SLICE_S` (~0.1 µs when not:
        at most one `sleep(0)` per slice, ~10 µs, whatever the rate)."""
        if _clock() - self._yielded >= INGEST_SLICE_S:
            await asyncio.sleep(0)
            self._yielded = _clock()

    def aggregator(self, instrument: str) -> CandleAggregator:
        agg = self._venue_candles.get(instrument)
        if agg is None:
            agg = self._venue_candles[instrument] = CandleAggregator(instrument, self.intervals)
        return agg

    def _pair_aggregator(self, pair: str) -> CandleAggregator:
        agg = self._pair_candles.get(pair)
        if agg is None:
            agg = self._pair_candles[pair] = CandleAggregator(pair, self.intervals)
        return agg

    def _route(self, instrument: str) -> _Route:
        pair = parse_instrument(instrument).pair
        route = _Route(
            self.aggregator(instrument),
            pair,
            self._pair_aggregator(pair),
            f"trades:{instrument}",
            f"ticker:{instrument}",
        )
        self._routes[instrument] = route
        return route

    async def on_trade(self, trade: Trade) -> None:
        # Per trade this awaits nothing that does not have to (~0.3 µs a coroutine): the
        # loop is given back once per `INGEST_SLICE_S`, publishes to the memory bus are
        # done when they return, and candle lists are emitted only when not empty.
        if _clock() - self._yielded >= INGEST_SLICE_S:  # `_take_turns`, inlined
            await asyncio.sleep(0)  # before the trade: each trade's work stays in one piece
            self._yielded = _clock()
        route = self._routes.get(trade.instrument) or self._route(trade.instrument)
        agg = route.candles
        duplicates = agg.duplicates
        conflate = self.candle_update_ms > 0
        changed = agg.add(trade, not conflate)
        if agg.duplicates != duplicates:
            self.stats.duplicates += 1
            return
        if conflate:
            self._changed[agg] = None
        self.stats.trades += 1
        if self.writer is not None:
            self.writer.add_trade(trade)
        pending = self._publish(route.trades_channel, trade, trade.time)
        if pending is not None:
            await pending
        if changed:
            await self._emit_candles(changed)

        ticker = self._venue_ticker(trade)
        pending = self._set_ticker(ticker, route.ticker_channel)
        if pending is not None:
            await pending

        composite = self.composite.add_trade(trade)
        if composite is not None:
            pending = self._set_ticker(composite, f"ticker:{composite.instrument}")
            if pending is not None:
                await pending
        # The venue trade itself, undeduplicated: the venue's aggregator above has dropped
        # duplicates already, and its ids would only fill this one's dedupe window.
        pair_agg = route.pair_candles
        if conflate:
            self._changed[pair_agg] = None
        changed = pair_agg.add(trade, not conflate, dedupe=False)
        if changed:
            await self._emit_candles(changed)

    def _venue_ticker(self, trade: Trade) -> Ticker:
        """The venue's ticker with the trade's price as its last."""
        previous = self.state.tickers.get(trade.instrument)
        if previous is None:
            return Ticker(
                trade.instrument,
                None,
                None,
                trade.price,
                None,
                None,
                None,
                trade.time,
                trade.received,
            )
        # What msgspec.structs.replace(previous, last=, time=, received=) gives, without
        # its keyword arguments.
        return Ticker(
            previous.instrument,
            previous.bid,
            previous.ask,
            trade.price,
            previous.bid_size,
            previous.ask_size,
            previous.volume_24h,
            trade.time,
            trade.received,
        )

    async def on_ticker(self, ticker: Ticker) -> None:
        await self._take_turns()
        self.stats.tickers += 1
        previous = self.state.tickers.get(ticker.instrument)
        if ticker.last is None and previous is not None and previous.last is not None:
            ticker = msgspec.structs.replace(ticker, last=previous.last)
        await self._emit_ticker(ticker)

    async def _emit_ticker(self, ticker: Ticker) -> None:
        pending = self._set_ticker(ticker, f"ticker:{ticker.instrument}")
        if pending is not None:
            await pending

    def _set_ticker(self, ticker: Ticker, channel: str) -> Awaitable[object] | None:
        """Keep, hand to the price hooks and publish, or leave to `publish_tickers` if the
        channel published less than a period ago; the publish to await, if any."""
        self.state.tickers[ticker.instrument] = ticker
        if ticker.last is not None:
            for price_hook in self.price_hooks:
                price_hook(ticker.instrument, ticker.last, ticker.time)
        if self._ticker_period:
            now = _clock()
            if now < self._ticker_quiet.get(channel, 0.0):
                self._tickers_due[channel] = ticker
                return None
            self._ticker_quiet[channel] = now + self._ticker_period
            if self._tickers_due:
                # One waiting since before the quiet spell ended is older: never after this.
                self._tickers_due.pop(channel, None)
        return self._publish(channel, ticker, ticker.time)

    async def publish_tickers(self) -> None:
        """Publish the newest waiting ticker of each throttled channel (`_set_ticker`)."""
        due, self._tickers_due = self._tickers_due, {}
        until = _clock() + self._ticker_period
        for channel, ticker in due.items():
            self._ticker_quiet[channel] = until
            pending = self._publish(channel, ticker, ticker.time)
            if pending is not None:
                await pending

    def _publish(
        self, channel: str, record: Trade | Ticker | Candle, time: int
    ) -> Awaitable[object] | None:
        """Publish; returns the awaitable to wait on, or None when it is done already."""
        if self._publish_now is not None:
            self._publish_now(channel, record_json(record), time)
            return None
        return self.bus.publish(channel, record_json(record), time)

    async def _emit_candles(self, candles: list[Candle]) -> None:
        for candle in candles:
            if candle.closed:
                self.stats.candles_closed += 1
            if self.writer is not None:
                self.writer.add_candle(candle)
            channel = f"candles:{candle.instrument}:{candle.interval}"
            pending = self._publish(channel, candle, candle.open_time)
            if pending is not None:
                await pending
            if candle.closed:
                for hook in self.closed_candle_hooks:
                    await hook(candle)

    async def publish_updates(self) -> None:
        """Publish the open candles of every aggregator a trade changed since the last call
        (conflation: once per `candle_update_ms`, however many trades came in between).

        With many instruments this is a burst (1,400 instruments: up to 16,800 candles),
        so it yields to the loop every `UPDATE_SLICE` aggregators: requests and frames
        wait a few ms at most instead of the whole burst."""
        changed, self._changed = self._changed, {}
        for n, agg in enumerate(changed, 1):
            await self._emit_candles(agg.open_candles())
            if n % UPDATE_SLICE == 0:
                await asyncio.sleep(0)

    async def run_updates(self) -> None:
        """`publish_updates` every `candle_update_ms` and `publish_tickers` every
        `ticker_update_ms` until cancelled (each a no-op at 0)."""
        loops = []
        if self.candle_update_ms > 0:
            loops.append(_every(self.candle_update_ms, self.publish_updates, "candle updates"))
        if self.ticker_update_ms > 0:
            loops.append(_every(self.ticker_update_ms, self.publish_tickers, "tickers"))
        await asyncio.gather(*loops)

    async def close_due(self, now_ms: int) -> None:
        """Close candles whose interval has ended (called on a timer with a grace delay)."""
        for agg in (*self._venue_candles.values(), *self._pair_candles.values()):
            await self._emit_candles(agg.close_due(now_ms))

    def flush_open(self) -> None:
        """Hand every open candle to the writer (shutdown: nothing closed is lost)."""
        if self.writer is None:
            return
        for agg in (*self._venue_candles.values(), *self._pair_candles.values()):
            for candle in agg.open_candles():
                self.writer.add_candle(candle)

    @property
    def late(self) -> int:
        return sum(sum(a.late.values()) for a in self._venue_candles.values())


async def _every(period_ms: int, publish: Callable[[], Awaitable[None]], what: str) -> None:
    period = period_ms / 1000
    while True:
        await asyncio.sleep(period)
        try:
            await publish()
        except Exception:  # a failing publish must not stop the updates
            log.exception("publishing %s failed; continuing", what)
