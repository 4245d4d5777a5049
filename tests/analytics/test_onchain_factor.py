"""The analytics service grades with on-chain day rollups present in the store (written
through the on-chain store's API, as the on-chain service does): the token that has them
gets the investor grade's activity factor, the others are graded exactly as without it.
Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from cryptopulse.analytics import AnalyticsService
from cryptopulse.analytics._onchain import ActivityReader, activity_factor, daily_activity
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain._onchain_rollup import ChainRollup, TokenRollup
from cryptopulse.domain.grades import ONCHAIN_FACTOR
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import DAY_MS, AddressSketch
from cryptopulse.domain.tokens import Sector, Supply, Token, TokenRegistry
from cryptopulse.settings import ChainConfig, Settings, TokenConfig
from cryptopulse.store.onchain import OnchainBatch, OnchainStore
from cryptopulse.store.sql import SQLStore

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
N = 200  # hourly candles: more than the 7-day investor window
AS_OF = T0 + (N - 1) * HOUR
TODAY = AS_OF - AS_OF % DAY_MS
AAA = "0x" + "a" * 40
CHAIN = "testchain"


def make_candle(instrument: str, index: int, close: float) -> Candle:
    return Candle(instrument, "1h", T0 + index * HOUR, close, close * 1.001, close * 0.999,
                  close, 10.0, 10.0 * close, 1, True)  # fmt: skip


def walk(seed: int, drift: float) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(N):
        price *= math.exp(drift + rng.gauss(0, 0.01))
        out.append(price)
    return out


def registry() -> TokenRegistry:
    def token(symbol: str) -> Token:
        return Token(symbol, symbol, Supply(1_000.0, 1_000.0, None, "2024-11-01"), ("pack",))

    return TokenRegistry(
        {s: token(s) for s in ("AAA", "BBB", "CCC")}, {"pack": Sector("pack", "Pack")}
    )


def chain_config() -> ChainConfig:
    # Never contacted: the service under test only reads the store.
    return ChainConfig(
        name=CHAIN,
        chain_id=1337,
        rpc_url="http://127.0.0.1:9",
        tokens=[TokenConfig(symbol="AAA", address=AAA, decimals=18)],
    )


def day_rollup(day: int) -> ChainRollup:
    sketch = AddressSketch().to_bytes()
    return ChainRollup(CHAIN, "1d", day, 7200, 10, 5, 1, 2, 0.5, 1.0, 0.1, 0, sketch)


def token_rollup(day: int, senders: int, receivers: int) -> TokenRollup:
    sketch = AddressSketch().to_bytes()
    return TokenRollup(CHAIN, AAA, "AAA", "1d", day, senders, 1.0, senders, receivers,
                       0.0, 0.0, 0, sketch, sketch)  # fmt: skip


async def write_days(store: SQLStore, activity: Sequence[tuple[int, int | None]]) -> None:
    """One `1d` chain rollup per day, and the token's rollup where it moved
    ((day, senders + receivers), None: the chain was followed but the token did not move)."""
    batch = OnchainBatch()
    batch.add_rollups(
        [day_rollup(day) for day, _ in activity],
        [token_rollup(day, n // 2, n - n // 2) for day, n in activity if n is not None],
    )
    await OnchainStore(store).write(batch)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    store = SQLStore(database_url)
    await store.migrate()
    yield store
    await store.close()


def settings(store: SQLStore, **overrides: Any) -> Settings:
    return Settings(
        database_url=store.url, analytics_interval="1h", analytics_warmup_candles=100, **overrides
    )


async def started(store: SQLStore, **overrides: Any) -> AnalyticsService:
    service = AnalyticsService(settings(store, **overrides), store, MemoryBus(1000), registry())
    await service.bootstrap()
    return service


def days_before_today(count: int) -> list[int]:
    return [TODAY - (count - i) * DAY_MS for i in range(count)]


async def test_grades_take_the_onchain_factor_from_stored_day_rollups(store: SQLStore) -> None:
    closes = {"AAA": walk(1, -0.001), "BBB": walk(2, 0.0), "CCC": walk(3, 0.001)}
    await store.upsert_candles(
        [
            make_candle(f"binance:{s}-USDT", i, c)
            for s, cs in closes.items()
            for i, c in enumerate(cs)
        ]
    )
    previous, recent = days_before_today(14)[:7], days_before_today(7)
    # Previous week 100 a day; recent week 280 on five days and no transfer on two days the
    # chain was followed (0, not missing): mean 200, growth ln 2.
    activity: list[tuple[int, int | None]] = [(d, 100) for d in previous]
    activity += [(d, None if i in (1, 4) else 280) for i, d in enumerate(recent)]
    activity.append((TODAY, 1))  # the day in progress is not used
    await write_days(store, activity)

    plain = await started(store)
    with_chain = await started(store, onchain_chains=[chain_config()])
    assert with_chain.state.as_of == plain.state.as_of == AS_OF

    aaa = with_chain.state.grades["AAA"]
    value, percentile = aaa.factors["investor"][ONCHAIN_FACTOR]
    assert value == pytest.approx(math.log(2.0))
    assert percentile == 50.0  # the only symbol with on-chain data
    assert aaa.investor != plain.state.grades["AAA"].investor
    assert aaa.trader == plain.state.grades["AAA"].trader
    for symbol in ("BBB", "CCC"):  # no on-chain data: exactly the grade without the factor
        assert with_chain.state.grades[symbol] == plain.state.grades[symbol]
    # The factor reaches the stored history too (the backfilled points included).
    history = await with_chain.store.get_grades("AAA", limit=100)
    assert history[-1].investor == aaa.investor


async def test_daily_activity_reads_days_and_gaps_from_the_store(store: SQLStore) -> None:
    days = days_before_today(16)
    # Days 0-2 not followed at all (no chain rollup): missing, not zero.
    await write_days(store, [(d, 10 * (i + 1)) for i, d in enumerate(days) if i >= 3])
    daily = await daily_activity(OnchainStore(store), [chain_config()], AS_OF)
    assert daily == {"AAA": {d: 10.0 * (i + 1) for i, d in enumerate(days) if i >= 3}}
    # 14 days before today: days 2..15; day 2 is missing, the rest are there.
    values = [10.0 * (i + 1) for i in range(3, 16)]
    previous, recent = values[:6], values[6:]
    expected = math.log(sum(recent) / len(recent) / (sum(previous) / len(previous)))
    assert activity_factor(daily, AS_OF) == {"AAA": pytest.approx(expected)}


async def test_too_little_onchain_history_means_no_factor(store: SQLStore) -> None:
    await store.upsert_candles([make_candle("binance:AAA-USDT", i, c)
                                for i, c in enumerate(walk(1, 0.0))])  # fmt: skip
    await write_days(store, [(d, 50) for d in days_before_today(5)])  # under half a window
    service = await started(store, onchain_chains=[chain_config()])
    assert ONCHAIN_FACTOR not in service.state.grades["AAA"].factors["investor"]


async def test_reader_keeps_a_day_for_its_ttl_and_rereads_after(store: SQLStore) -> None:
    days = days_before_today(14)
    await write_days(store, [(d, 100) for d in days[:7]])
    cached = ActivityReader(OnchainStore(store), [chain_config()])
    fresh = ActivityReader(OnchainStore(store), [chain_config()], ttl_s=0.0)
    assert (await cached.read(AS_OF))["AAA"] == (await fresh.read(AS_OF))["AAA"]
    await write_days(store, [(d, 200) for d in days[7:]])
    assert len((await cached.read(AS_OF))["AAA"]) == 7  # within its TTL: not read again
    assert len((await fresh.read(AS_OF))["AAA"]) == 14
    assert len((await cached.read(AS_OF + DAY_MS))["AAA"]) == 14  # a new day: read again
