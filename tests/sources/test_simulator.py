"""The simulator: statistics of the pure model, determinism, and a run into a real pipeline."""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Callable, Sequence

import pytest

from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain.models import Ticker, Trade
from cryptopulse.pipeline import Pipeline
from cryptopulse.sources.simulator import SimMarket, SimulatorSource, start_price
from cryptopulse.state import MarketState

UNIVERSE = ["sim:BTC-USD", "sim:ETH-USD", "sim:SOL-USD", "sim:ETH-BTC", "sim:XRP-USDT"]
STEPS = 6_000


def make_market(seed: int = 7, instruments: Sequence[str] = UNIVERSE) -> SimMarket:
    return SimMarket(instruments, seed=seed, start_ms=1_700_000_000_000)


def simulate(market: SimMarket, steps: int = STEPS) -> dict[str, list[float]]:
    """Mid price of every instrument after each step (250 ms of market time apart)."""
    mids: dict[str, list[float]] = {i: [] for i in market.instruments}
    for k in range(steps):
        market.step(1_700_000_000_000 + k * market.step_ms)
        for instrument in market.instruments:
            mids[instrument].append(market.mid(instrument))
    return mids


def log_returns(prices: Sequence[float]) -> list[float]:
    return [math.log(b / a) for a, b in zip(prices, prices[1:], strict=False)]


@pytest.fixture(scope="module")
def mids() -> dict[str, list[float]]:
    return simulate(make_market())


def test_prices_start_plausible_and_stay_positive(mids: dict[str, list[float]]) -> None:
    assert mids["sim:BTC-USD"][0] == pytest.approx(90_000, rel=0.01)
    assert mids["sim:ETH-USD"][0] == pytest.approx(3_000, rel=0.01)
    assert mids["sim:ETH-BTC"][0] == pytest.approx(3_000 / 90_000, rel=0.01)
    assert all(p > 0 for series in mids.values() for p in series)


@pytest.mark.parametrize(
    ("a", "b"), [("sim:BTC-USD", "sim:ETH-USD"), ("sim:BTC-USD", "sim:SOL-USD")]
)
def test_returns_of_correlated_assets_correlate(
    mids: dict[str, list[float]], a: str, b: str
) -> None:
    assert statistics.correlation(log_returns(mids[a]), log_returns(mids[b])) > 0.3


def test_cross_rate_is_consistent(mids: dict[str, list[float]]) -> None:
    series = (mids["sim:ETH-USD"], mids["sim:BTC-USD"], mids["sim:ETH-BTC"])
    for eth, btc, cross in zip(*series, strict=True):
        assert cross == pytest.approx(eth / btc, rel=1e-9)


def test_volatility_clusters(mids: dict[str, list[float]]) -> None:
    """Squared returns are autocorrelated (GARCH); shuffled, the same returns are not."""
    squared = [r * r for r in log_returns(mids["sim:BTC-USD"])]
    lags = (1, 2, 5, 10)
    acf = [statistics.correlation(squared[:-k], squared[k:]) for k in lags]
    assert min(acf) > 0.04
    # Calm and wild stretches: the variance over 100-step windows spreads widely.
    windows = [statistics.fmean(squared[i : i + 100]) for i in range(0, len(squared), 100)]
    assert max(windows) / min(windows) > 3


def test_annualized_volatility_is_in_a_crypto_range(mids: dict[str, list[float]]) -> None:
    steps_per_year = 365 * 86_400 * 4
    vol = statistics.pstdev(log_returns(mids["sim:BTC-USD"])) * math.sqrt(steps_per_year)
    assert 0.2 < vol < 1.5


def test_trades_vary_in_size_and_arrival() -> None:
    market = make_market(instruments=["sim:BTC-USD"])
    trades = [t for k in range(2_000) for t in market.step(1_000 + k * 250).trades]
    sizes = [t.size for t in trades]
    per_step: dict[int, int] = {}
    for t in trades:
        per_step[(t.time - 1) // 250] = per_step.get((t.time - 1) // 250, 0) + 1
    assert len(trades) > 1_000
    assert max(sizes) / min(sizes) > 100  # log-normal: a wide spread
    assert len(set(per_step.values())) > 3  # Poisson arrivals: counts vary per step
    assert {t.side for t in trades} == {"buy", "sell"}


def test_trade_ids_unique_increasing_and_times_ordered() -> None:
    market = make_market()
    trades = [t for k in range(500) for t in market.step(1_000 + k * 250).trades]
    for instrument in UNIVERSE:
        mine = [t for t in trades if t.instrument == instrument]
        ids = [int(t.trade_id) for t in mine]
        assert ids == sorted(set(ids))
        assert [t.time for t in mine] == sorted(t.time for t in mine)
        assert all(1_000 - 250 < t.time <= t.received for t in mine)


def test_tickers_bracket_the_mid() -> None:
    market = make_market()
    step = market.step(1_000)
    assert [t.instrument for t in step.tickers] == UNIVERSE
    for ticker in step.tickers:
        assert ticker.bid is not None and ticker.ask is not None
        assert ticker.bid < market.mid(ticker.instrument) < ticker.ask
        assert ticker.bid_size and ticker.ask_size and ticker.bid_size > 0


def test_same_seed_same_market() -> None:
    first, second, other = make_market(seed=3), make_market(seed=3), make_market(seed=4)
    for k in range(200):
        now = 1_000 + k * 250
        a, b, c = first.step(now), second.step(now), other.step(now)
        assert a == b
    assert a.tickers != c.tickers


def test_unknown_assets_get_a_stable_price() -> None:
    assert start_price("NEWCOIN") == start_price("NEWCOIN") > 0
    assert start_price("USDT") == 1.0


def test_bad_speed_or_instrument_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        SimulatorSource(["BTC-USD"], speed=0)
    with pytest.raises(ValueError):
        SimulatorSource(["not an instrument"])


def test_names_without_a_venue_become_sim() -> None:
    source = SimulatorSource(["BTC-USD", "sim:ETH-USD"])
    assert source.instruments == ["sim:BTC-USD", "sim:ETH-USD"]
    assert (source.name, source.kind, source.status.connected) == ("simulator", "simulated", False)


class RecordingSink:
    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.tickers: list[Ticker] = []

    async def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade)

    async def on_ticker(self, ticker: Ticker) -> None:
        self.tickers.append(ticker)


async def run_for(
    source: SimulatorSource,
    sink: object,
    seconds: float,
    enough: Callable[[], bool] = lambda: True,
) -> None:
    """Run the source for `seconds`, and longer (up to 10 s) until `enough()`."""
    task = asyncio.create_task(source.run(sink))  # type: ignore[arg-type]
    await asyncio.sleep(seconds)
    for _ in range(100):  # a loaded CI machine may give the simulator little CPU
        if enough():
            break
        await asyncio.sleep(0.1)
    assert source.status.connected
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not source.status.connected


async def test_seeded_sources_emit_the_same_market() -> None:
    sinks = [RecordingSink(), RecordingSink()]
    for sink in sinks:
        source = SimulatorSource(["BTC-USD", "ETH-USD"], seed=11, speed=20)

        def enough(sink: RecordingSink = sink) -> bool:
            names = [t.instrument for t in sink.trades]
            return min(names.count("sim:BTC-USD"), names.count("sim:ETH-USD")) > 5

        await run_for(source, sink, 0.2, enough)
    # Only the clock differs between the runs: per instrument, the same trades in order.
    for instrument in ("sim:BTC-USD", "sim:ETH-USD"):
        a, b = (
            [(t.price, t.size, t.side) for t in s.trades if t.instrument == instrument]
            for s in sinks
        )
        n = min(len(a), len(b))
        assert n > 5
        assert a[:n] == b[:n]


async def test_runs_into_a_real_pipeline() -> None:
    state = MarketState()
    pipeline = Pipeline(MemoryBus(), state)
    source = SimulatorSource(["BTC-USD", "ETH-USD", "SOL-USD"], seed=5, speed=50)
    await run_for(source, pipeline, 0.3)
    assert pipeline.stats.trades > 50 and pipeline.stats.tickers > 0
    assert pipeline.stats.duplicates == 0 and pipeline.late == 0
    assert source.status.messages >= pipeline.stats.trades
    for instrument in source.instruments:
        ticker = state.tickers[instrument]
        assert ticker.bid is not None and ticker.last is not None
    assert "BTC-USD" in state.tickers  # the composite too
    candles = pipeline.aggregator("sim:BTC-USD").open_candles()
    assert {c.interval for c in candles} >= {"1m", "5m"}


async def test_cpu_is_bounded_at_high_speed() -> None:
    """At any speed the loop sleeps between batches, so the event loop stays responsive."""
    source = SimulatorSource(["BTC-USD"], seed=1, speed=1_000)
    task = asyncio.create_task(source.run(RecordingSink()))
    loop = asyncio.get_running_loop()
    worst = 0.0
    for _ in range(10):
        t0 = loop.time()
        await asyncio.sleep(0.01)
        worst = max(worst, loop.time() - t0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert worst < 0.5


def test_the_seed_setting_seeds_the_simulator() -> None:
    from cryptopulse.settings import Settings  # noqa: PLC0415
    from cryptopulse.sources.auto import build_sources  # noqa: PLC0415

    seeded = Settings(source="sim", sim_seed=964, instruments=["coinbase:BTC-USD"])
    (source,), _ = build_sources(seeded)
    assert isinstance(source, SimulatorSource)
    assert (source.seed, source.instruments) == (964, ["sim:BTC-USD"])
    assert Settings(source="sim").sim_seed is None
