"""The pipeline's open-candle conflation (`candle_update_ms`) and ticker throttle
(`ticker_update_ms`), on a real memory bus."""

from __future__ import annotations

import asyncio

import orjson

from cryptopulse.bus import MemoryBus, Message
from cryptopulse.domain.models import Candle, Trade
from cryptopulse.pipeline import UPDATE_SLICE, Pipeline
from cryptopulse.state import MarketState
from cryptopulse.store.writer import StoreWriter

MIN = 60_000
T0 = 1_700_000_040_000 - 1_700_000_040_000 % (5 * MIN)
VENUE = "coinbase:BTC-USD"


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def candles(self) -> list[dict[str, object]]:
        return [orjson.loads(m.data) for m in self.messages]


def trade(n: int, price: float, time: int) -> Trade:
    return Trade(VENUE, str(n), price, 1.0, "buy", time, time)


async def watch(bus: MemoryBus, channel: str) -> Collector:
    collector = Collector()
    await bus.subscribe(channel, collector)
    return collector


async def test_every_trade_publishes_its_open_candles_without_conflation() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState())
    venue, pair = await watch(bus, f"candles:{VENUE}:1m"), await watch(bus, "candles:BTC-USD:1m")
    for n in range(5):
        await pipeline.on_trade(trade(n, 100.0 + n, T0 + n))
    assert [c["close"] for c in venue.candles()] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert len(pair.messages) == 5


async def test_conflated_updates_publish_the_latest_state_once() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), candle_update_ms=250)
    venue, pair = await watch(bus, f"candles:{VENUE}:1m"), await watch(bus, "candles:BTC-USD:5m")
    trades = await watch(bus, f"trades:{VENUE}")
    for n in range(100):
        await pipeline.on_trade(trade(n, 100.0 + n, T0 + n))
    assert len(trades.messages) == 100  # trades and tickers are never conflated
    assert venue.messages == [] and pair.messages == []
    await pipeline.publish_updates()
    (candle,) = venue.candles()
    assert (candle["open"], candle["high"], candle["close"], candle["trades"]) == (
        100.0,
        199.0,
        199.0,
        100,
    )
    assert candle["closed"] is False
    assert [c["trades"] for c in pair.candles()] == [100]
    await pipeline.publish_updates()  # nothing changed since: nothing published
    assert len(venue.messages) == 1


async def test_a_close_is_published_at_once_and_before_the_next_bucket() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), candle_update_ms=250)
    venue = await watch(bus, f"candles:{VENUE}:1m")
    await pipeline.on_trade(trade(1, 100.0, T0))
    await pipeline.on_trade(trade(2, 101.0, T0 + 10))
    await pipeline.on_trade(trade(3, 102.0, T0 + MIN))  # the next minute: 1m closes now
    assert [(c["open_time"], c["closed"], c["close"]) for c in venue.candles()] == [
        (T0, True, 101.0)
    ]
    await pipeline.publish_updates()
    assert [(c["open_time"], c["closed"]) for c in venue.candles()] == [
        (T0, True),
        (T0 + MIN, False),
    ]
    seqs = [m.seq for m in venue.messages]
    assert seqs == sorted(seqs)


async def test_duplicates_mark_nothing_and_the_timer_publishes() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), candle_update_ms=20)
    venue = await watch(bus, f"candles:{VENUE}:1m")
    await pipeline.on_trade(trade(1, 100.0, T0))
    await pipeline.publish_updates()
    await pipeline.on_trade(trade(1, 100.0, T0))  # a duplicate changes no candle
    await pipeline.publish_updates()
    assert len(venue.messages) == 1
    task = asyncio.create_task(pipeline.run_updates())
    try:
        await pipeline.on_trade(trade(2, 99.0, T0 + 5))
        async with asyncio.timeout(2):
            while len(venue.messages) < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert venue.candles()[-1]["low"] == 99.0


async def test_the_writer_gets_every_candle_state_it_would_have_kept() -> None:
    """The store keeps one row per candle: conflated updates, the closes and the open
    candles flushed at shutdown give it the same rows as updates per trade."""

    class Recording(StoreWriter):
        """The writer's own keying (one row per candle), without a store."""

        def __init__(self) -> None:
            self.rows: dict[tuple[str, str, int], Candle] = {}

        def add_trade(self, trade: Trade) -> None:
            return None

        def add_candle(self, candle: Candle) -> None:
            self.rows[(candle.instrument, candle.interval, candle.open_time)] = candle

    results: list[dict[tuple[str, str, int], Candle]] = []
    for update_ms in (0, 250):
        writer = Recording()
        pipeline = Pipeline(MemoryBus(), MarketState(), writer, candle_update_ms=update_ms)
        for n in range(300):
            await pipeline.on_trade(trade(n, 100.0 + (n * 7) % 13, T0 + n * 1_000))
            if n % 40 == 0:
                await pipeline.publish_updates()
        pipeline.flush_open()
        results.append(writer.rows)
    assert results[0] == results[1] and len(results[0]) > 12


async def test_a_burst_of_updates_yields_to_the_loop() -> None:
    """Many instruments' updates are published in slices, with other tasks running in
    between (a request or a frame waits for one slice, not the whole burst)."""
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), candle_update_ms=250)
    n = 3 * UPDATE_SLICE
    for i in range(n):
        name = f"coinbase:C{i}-USD"
        await pipeline.on_trade(Trade(name, "1", 1.0, 1.0, "buy", T0, T0))
    published: list[int] = []
    ticks: list[int] = []

    class Counter:
        def deliver(self, message: Message) -> None:
            published.append(1)

    for i in range(n):
        await bus.subscribe(f"candles:coinbase:C{i}-USD:1m", Counter())

    async def other_task() -> None:
        while len(published) < n:
            ticks.append(len(published))
            await asyncio.sleep(0)

    await asyncio.gather(pipeline.publish_updates(), other_task())
    assert len(published) == n  # every venue instrument's 1m candle, once
    assert len({t for t in ticks if 0 < t < n}) >= 2  # the other task ran mid-burst


async def test_a_burst_of_trades_takes_turns_with_the_loop() -> None:
    """A source handing over trades back to back (a catch-up, one read of many frames)
    gives the loop back every INGEST_SLICE_S: others run during the burst, not after."""
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState())
    await watch(bus, f"trades:{VENUE}")
    burst = 3000  # tens of ms of work: many slices
    seen_during: list[int] = []

    async def other() -> None:  # a request, a stream frame: anything else on the loop
        while pipeline.stats.trades < burst:
            seen_during.append(pipeline.stats.trades)
            await asyncio.sleep(0)

    async def source() -> None:
        for n in range(burst):
            await pipeline.on_trade(trade(n, 100.0 + n % 7, T0 + n))

    await asyncio.gather(source(), other())
    assert pipeline.stats.trades == burst
    progress = [n for n in seen_during if 0 < n < burst]
    assert len(set(progress)) >= 3, seen_during[:20]  # it ran between slices of the burst
    # ...yet the burst kept going in slices, not a yield per trade.
    assert len(seen_during) < burst / 10, len(seen_during)


def lasts(collector: Collector) -> list[object]:
    return [orjson.loads(m.data)["last"] for m in collector.messages]


async def test_a_busy_ticker_channel_publishes_once_per_period_the_newest() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), ticker_update_ms=60_000)  # no period ends here
    prices: list[float] = []
    pipeline.price_hooks.append(lambda instrument, price, time: prices.append(price))
    venue, pair = await watch(bus, f"ticker:{VENUE}"), await watch(bus, "ticker:BTC-USD")
    trades = await watch(bus, f"trades:{VENUE}")
    for n in range(50):
        await pipeline.on_trade(trade(n, 100.0 + n, T0 + n))
    # The first ticker of each channel at once, the others wait; trades are never held.
    assert lasts(venue) == [100.0] and lasts(pair) == [100.0]
    assert len(trades.messages) == 50
    # The market state and the price hooks see every ticker (venue and composite).
    assert pipeline.state.tickers[VENUE].last == 149.0
    assert pipeline.state.tickers["BTC-USD"].last == 149.0
    assert len(prices) == 100 and prices[-2:] == [149.0, 149.0]
    await pipeline.publish_tickers()  # the period's end: the newest waiting, once
    assert lasts(venue) == [100.0, 149.0] and lasts(pair) == [100.0, 149.0]
    await pipeline.publish_tickers()  # nothing waits
    assert len(venue.messages) == 2
    await pipeline.on_trade(trade(50, 90.0, T0 + 50))  # within the new period: waits
    assert len(venue.messages) == 2
    await pipeline.publish_tickers()
    assert lasts(venue)[-1] == 90.0
    seqs = [m.seq for m in venue.messages]
    assert seqs == sorted(seqs) == list(range(1, 4))


async def test_a_ticker_after_a_quiet_spell_goes_out_at_once_and_none_older_after_it() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), ticker_update_ms=30)
    venue = await watch(bus, f"ticker:{VENUE}")
    await pipeline.on_trade(trade(1, 100.0, T0))  # published
    await pipeline.on_trade(trade(2, 101.0, T0 + 1))  # waits
    await asyncio.sleep(0.05)  # the period ends with no timer running
    await pipeline.on_trade(trade(3, 102.0, T0 + 2))  # quiet spell over: at once
    assert lasts(venue) == [100.0, 102.0]
    await pipeline.publish_tickers()  # 101 was older than what went out: never sent
    assert lasts(venue) == [100.0, 102.0]


async def test_the_timer_publishes_waiting_tickers() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState(), ticker_update_ms=20)
    venue = await watch(bus, f"ticker:{VENUE}")
    task = asyncio.create_task(pipeline.run_updates())
    try:
        await pipeline.on_trade(trade(1, 100.0, T0))
        await pipeline.on_trade(trade(2, 99.0, T0 + 1))  # waits for the timer
        assert lasts(venue) == [100.0]
        async with asyncio.timeout(2):
            while len(venue.messages) < 2:
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
    assert lasts(venue) == [100.0, 99.0]


async def test_without_a_period_every_ticker_is_published() -> None:
    bus = MemoryBus()
    pipeline = Pipeline(bus, MarketState())
    venue = await watch(bus, f"ticker:{VENUE}")
    for n in range(5):
        await pipeline.on_trade(trade(n, 100.0 + n, T0 + n))
    assert lasts(venue) == [100.0, 101.0, 102.0, 103.0, 104.0]
