"""The analytics service over a real SQLite store and the memory bus: start-up load, live
closes, published messages and events, signal history, chained sector levels. Every test
runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from cryptopulse.analytics import AnalyticsService
from cryptopulse.bus.base import Message
from cryptopulse.bus.memory import MemoryBus
from cryptopulse.domain.grades import band
from cryptopulse.domain.models import Candle
from cryptopulse.domain.tokens import Sector, Supply, Token, TokenRegistry
from cryptopulse.settings import Settings
from cryptopulse.store.analytics import AnalyticsStore
from cryptopulse.store.sql import SQLStore

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
N = 200  # hourly candles: more than the 7-day investor window


def make_candle(instrument: str, index: int, close: float, volume: float = 10.0,
                interval: str = "1h") -> Candle:  # fmt: skip
    step = {"1h": HOUR, "1m": 60_000}[interval]
    return Candle(instrument, interval, T0 + index * step, close, close * 1.001, close * 0.999,
                  close, volume, volume * close, 1, True)  # fmt: skip


def walk(seed: int, n: int, drift: float = 0.0, scale: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= math.exp(drift + rng.gauss(0, scale))
        out.append(price)
    return out


def registry() -> TokenRegistry:
    def token(symbol: str) -> Token:
        return Token(symbol, symbol, Supply(1_000.0, 1_000.0, None, "2024-11-01"), ("pack",))

    return TokenRegistry(
        {s: token(s) for s in ("AAA", "BBB", "CCC")}, {"pack": Sector("pack", "Pack")}
    )


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(orjson.loads(message.data))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event") == kind]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    """The service on SQLite and on the real PostgreSQL server."""
    store = SQLStore(database_url)
    await store.migrate()
    yield store
    await store.close()


def settings(store: SQLStore, **overrides: Any) -> Settings:
    return Settings(
        database_url=store.url, analytics_interval="1h", analytics_warmup_candles=100, **overrides
    )


async def seed(store: SQLStore, closes: dict[str, list[float]]) -> None:
    await store.upsert_candles(
        [
            make_candle(f"binance:{s}-USDT", i, c)
            for s, series in closes.items()
            for i, c in enumerate(series)
        ]  # fmt: skip
    )


async def started(store: SQLStore, **overrides: Any) -> AnalyticsService:
    service = AnalyticsService(settings(store, **overrides), store, MemoryBus(1000), registry())
    await service.bootstrap()
    return service


async def test_start_up_loads_the_store_and_grades_every_symbol(store: SQLStore) -> None:
    await seed(store, {"AAA": walk(1, N, -0.002), "BBB": walk(2, N), "CCC": walk(3, N, 0.002)})
    await store.upsert_candles([make_candle("binance:AAA-BTC", i, 1.0) for i in range(N)])
    service = await started(store)
    state = service.state
    assert state.as_of == T0 + (N - 1) * HOUR
    # USDT ranks before BTC in the default quote preference.
    assert state.instruments == {s: f"binance:{s}-USDT" for s in ("AAA", "BBB", "CCC")}
    assert all(g.trader is not None and g.investor is not None for g in state.grades.values())
    assert set(state.grades_24h) == {"AAA", "BBB", "CCC"}  # the backfill made a day-old point
    assert state.sectors["pack"].members == ["AAA", "BBB", "CCC"]
    history = await service.store.get_grades("CCC", limit=100)
    assert [r.time for r in history] == [state.as_of - h * HOUR for h in range(24, -1, -1)]


async def test_live_closes_update_signals_and_publish_them(store: SQLStore) -> None:
    await seed(store, {"AAA": walk(1, N), "BBB": walk(2, N)})
    service = await started(store)
    recorder = Recorder()
    await service.bus.subscribe("signals:binance:AAA-USDT", recorder)
    state = service.signals[("binance:AAA-USDT", "1h")]
    assert state.last_time == T0 + (N - 1) * HOUR  # warmed from the store
    for i in range(N, N + 5):
        await service.apply(make_candle("binance:AAA-USDT", i, 100.0 * 1.05 ** (i - N + 1)))
    await service.apply(make_candle("binance:AAA-USDT", N + 2, 1.0))  # a repeat: ignored
    assert [m["time"] for m in recorder.messages] == [T0 + i * HOUR for i in range(N, N + 5)]
    last = recorder.messages[-1]
    assert last["state"] == "bullish" and last["indicators"]["rsi"] > 50
    assert service.series["binance:AAA-USDT"].last_time == T0 + (N + 4) * HOUR
    await service.stop()  # flushes the pending signal changes
    changes = await AnalyticsStore(store).get_signals("binance:AAA-USDT", "1h", limit=1000)
    assert changes and changes[-1].state == "bullish"
    states = [c.state for c in changes]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))


async def test_other_intervals_warm_from_the_store_before_their_first_live_candle(
    store: SQLStore,
) -> None:
    minutes = [make_candle("binance:AAA-USDT", i, 100.0 + i, interval="1m") for i in range(60)]
    await store.upsert_candles(minutes)
    service = await started(store)
    live = make_candle("binance:AAA-USDT", 59, 200.0, interval="1m")  # stored and live
    await service.apply(live)
    state = service.signals[("binance:AAA-USDT", "1m")]
    assert state.last_time == live.open_time and state.close == 200.0  # applied once, live


async def test_a_move_across_a_band_boundary_is_a_grades_event(store: SQLStore) -> None:
    await seed(
        store,
        {"AAA": walk(1, N, -0.003), "BBB": walk(2, N, 0.0), "CCC": walk(3, N, 0.003)},
    )
    service = await started(store)
    recorder = Recorder()
    await service.bus.subscribe("grades", recorder)
    before = service.state.grades["AAA"]
    last = service.series["binance:AAA-USDT"].closes[-1]
    await service.apply(make_candle("binance:AAA-USDT", N, last * 3.0, volume=1_000.0))
    await service.recompute()
    after = service.state.grades["AAA"]
    assert before.trader is not None and after.trader is not None
    assert band(after.trader) > band(before.trader)
    events = recorder.events("band_change")
    mine = [e for e in events if e["symbol"] == "AAA" and e["kind"] == "trader"]
    assert mine == [
        {
            "event": "band_change",
            "symbol": "AAA",
            "instrument": "binance:AAA-USDT",
            "kind": "trader",
            "previous": before.trader,
            "grade": after.trader,
            "from_band": band(before.trader),
            "to_band": band(after.trader),
            "label": ("very weak", "weak", "neutral", "strong", "very strong")[band(after.trader)],
            "time": T0 + N * HOUR,
        }
    ]
    snapshot = recorder.events("grades")[-1]
    assert snapshot["time"] == T0 + N * HOUR and len(snapshot["data"]) == 3


async def test_a_member_decoupling_from_its_sector_is_a_sectors_event(store: SQLStore) -> None:
    base = walk(7, N + 30, scale=0.02)
    noisy = walk(8, N + 30, scale=0.02)
    closes = {
        "AAA": base[:N],
        "BBB": [c * (1 + 0.001 * math.sin(i)) for i, c in enumerate(base[:N])],
        "CCC": [c * 1.5 for c in base[:N]],  # moves with the pack until now
    }
    await seed(store, closes)
    service = await started(store)
    assert service.state.sectors["pack"].breakdowns == []
    recorder = Recorder()
    await service.bus.subscribe("sectors", recorder)
    for i in range(N, N + 30):  # CCC now follows its own path for more than a day
        await service.apply(make_candle("binance:AAA-USDT", i, base[i]))
        await service.apply(make_candle("binance:BBB-USDT", i, base[i]))
        await service.apply(make_candle("binance:CCC-USDT", i, noisy[i] * 1.5))
        await service.recompute()
    events = recorder.events("correlation_breakdown")
    assert [(e["sector"], e["symbol"]) for e in events] == [("pack", "CCC")]
    assert events[0]["correlation"] < events[0]["threshold"] == 0.3
    snap = service.state.sectors["pack"]
    below = [s for s, v in snap.member_correlation.items() if v is not None and v < 0.3]
    assert snap.breakdowns == below  # the current state; the event fired once, on the way down


async def test_sector_levels_continue_from_the_stored_history_after_a_restart(
    store: SQLStore,
) -> None:
    closes = {"AAA": walk(1, N), "BBB": walk(2, N), "CCC": walk(3, N)}
    await seed(store, {s: c[: N - 50] for s, c in closes.items()})
    first = await started(store)
    level = first.state.sectors["pack"].index.equal[-1]
    history = AnalyticsStore(store)
    stored = await history.get_sector_history("pack", limit=1, descending=True)
    assert stored[0].equal_index == pytest.approx(level)
    await seed(store, closes)
    # The restarted service keeps only 60 candles: its own index starts at 100 much later.
    second = await started(store, analytics_history_candles=100)
    rows = await history.get_sector_history("pack", start=T0 + (N - 52) * HOUR, limit=10)
    assert [r.time for r in rows[:3]] == [T0 + (N - 52 + i) * HOUR for i in range(3)]
    assert rows[1].equal_index == pytest.approx(level)  # the anchor, untouched
    step = (rows[2].equal_index / rows[1].equal_index) - 1
    expected = sum(closes[s][N - 50] / closes[s][N - 51] - 1 for s in closes) / 3
    assert step == pytest.approx(expected, rel=1e-9)  # no jump across the restart
    served = second.state.sectors["pack"]
    scale = second.state.scales["pack"][0]
    newest = await history.get_sector_history("pack", limit=1, descending=True)
    assert served.index.equal[-1] * scale == pytest.approx(newest[0].equal_index)


async def test_a_feed_that_just_started_does_not_move_as_of_past_the_history(
    store: SQLStore,
) -> None:
    await seed(store, {"AAA": walk(1, N), "BBB": walk(2, N)})
    later = N + 24 * 30  # a month after the imported history ends
    await store.upsert_candles([make_candle("CCC-USD", later + i, 50.0) for i in range(3)])
    service = await started(store)
    assert service.state.as_of == T0 + (N - 1) * HOUR
    grades = service.state.grades
    assert grades["AAA"].trader is not None and grades["BBB"].investor is not None
    assert grades["CCC"].trader is None and service.state.instruments["CCC"] == "CCC-USD"
