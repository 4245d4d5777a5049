"""Alert rules, evaluated incrementally: crosses by bisection, cooldowns, one-shot rules,
candle rules, analytics and on-chain rules; a brute-force oracle for price crosses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse.domain.alerts import AlertBook, Rule, RuleError, check_params
from cryptopulse.domain.grades import Grade
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import WhaleTransfer
from cryptopulse.domain.sectors import IndexSeries, SectorSnapshot

MINUTE = 60_000


def rule(rule_id: str, kind: str, **params: Any) -> Rule:
    cooldown = params.pop("cooldown_ms", 0)
    one_shot = params.pop("one_shot", False)
    return Rule(rule_id, "alice", kind, params, cooldown, one_shot)


def candle(t: int, close: float, volume: float = 1.0, open_: float | None = None) -> Candle:
    o = close if open_ is None else open_
    return Candle(
        "coinbase:BTC-USD",
        "1m",
        t * MINUTE,
        o,
        max(o, close),
        min(o, close),
        close,
        volume,
        volume * close,
        1,
        True,
    )


def fired_ids(book: AlertBook) -> list[str]:
    return [f.rule_id for f in book.drain()]


def test_price_cross_up_down_either() -> None:
    book = AlertBook()
    book.add(rule("up", "price_cross", instrument="coinbase:BTC-USD", level=100.0, direction="up"))
    book.add(
        rule("dn", "price_cross", instrument="coinbase:BTC-USD", level=100.0, direction="down")
    )
    book.add(rule("any", "price_cross", instrument="coinbase:BTC-USD", level=100.0))
    book.on_price("coinbase:BTC-USD", 99.0, 1)  # first price: a reference, no cross
    assert fired_ids(book) == []
    book.on_price("coinbase:BTC-USD", 100.0, 2)  # touching the level from below crosses it
    assert sorted(fired_ids(book)) == ["any", "up"]
    book.on_price("coinbase:BTC-USD", 101.0, 3)
    assert fired_ids(book) == []
    book.on_price("coinbase:BTC-USD", 99.5, 4)
    assert sorted(fired_ids(book)) == ["any", "dn"]
    book.on_price("coinbase:ETH-USD", 1.0, 5)  # other instruments check nothing
    assert fired_ids(book) == []


def test_one_shot_and_cooldown() -> None:
    book = AlertBook()
    book.add(rule("once", "price_cross", instrument="x:A-B", level=10.0, one_shot=True))
    book.add(rule("cool", "price_cross", instrument="x:A-B", level=10.0, cooldown_ms=100))
    prices = [(9.0, 0), (11.0, 10), (9.0, 20), (11.0, 200), (9.0, 205)]
    seen = []
    for price, time in prices:
        book.on_price("x:A-B", price, time)
        seen.append(sorted(fired_ids(book)))
    assert seen == [[], ["cool", "once"], [], ["cool"], []]
    assert not book.rules["once"].active


def test_pause_and_resume() -> None:
    book = AlertBook()
    book.add(rule("r", "price_cross", instrument="x:A-B", level=10.0))
    book.set_active("r", False)
    book.on_price("x:A-B", 9.0, 0)
    book.on_price("x:A-B", 11.0, 1)
    assert fired_ids(book) == []
    book.set_active("r", True)
    book.on_price("x:A-B", 9.0, 2)
    assert fired_ids(book) == ["r"]


@settings(max_examples=200, deadline=None)
@given(
    levels=st.lists(st.floats(1, 100), min_size=1, max_size=30),
    prices=st.lists(st.floats(1, 100), min_size=2, max_size=40),
)
def test_crosses_match_brute_force(levels: list[float], prices: list[float]) -> None:
    book = AlertBook()
    for i, level in enumerate(levels):
        book.add(rule(f"r{i}", "price_cross", instrument="x:A-B", level=level))
    expected: list[str] = []
    for t, (before, after) in enumerate(zip(prices, prices[1:], strict=False)):
        for i, level in enumerate(levels):
            if before < level <= after or after <= level < before:
                expected.append(f"r{i}@{t + 1}")
    book.on_price("x:A-B", prices[0], 0)
    got: list[str] = []
    for t, price in enumerate(prices[1:], start=1):
        book.on_price("x:A-B", price, t)
        got += [f"{f.rule_id}@{t}" for f in book.drain()]
    assert sorted(got) == sorted(expected)


def test_pct_move_within_window_is_edge_triggered() -> None:
    book = AlertBook()
    book.add(
        rule(
            "m",
            "pct_move",
            instrument="coinbase:BTC-USD",
            percent=5.0,
            window_ms=3 * MINUTE,
            direction="up",
        )
    )
    closes = [100, 101, 103, 106, 107, 100, 100, 100, 106]
    fired: list[int] = []
    for t, close in enumerate(closes):
        book.on_candle(candle(t, close, open_=closes[t - 1] if t else close))
        fired += [f.time // MINUTE for f in book.drain()]
    # t=3: from the open of t=1 (100) to 106: +6 %; stays on at t=4 (no refire); t=8 again.
    assert fired == [4, 9]


def test_volume_spike_z_score() -> None:
    book = AlertBook()
    book.add(rule("v", "volume_spike", instrument="coinbase:BTC-USD", window=5, z=3.0))
    volumes = [10, 11, 9, 10, 11, 10, 50, 10]
    fired = []
    for t, volume in enumerate(volumes):
        book.on_candle(candle(t, 100.0, volume))
        fired += [(f.time // MINUTE, round(f.data["z"], 1)) for f in book.drain()]
    assert len(fired) == 1 and fired[0][0] == 7 and fired[0][1] > 3


def test_level_break_on_resistance() -> None:
    book = AlertBook()
    book.add(rule("lv", "level_break", instrument="coinbase:BTC-USD", side="resistance"))
    prices = [100 + (5 if i % 8 < 4 else 0) + (i % 4) for i in range(40)]  # tops near 108
    for t, p in enumerate(prices):
        book.on_candle(candle(t, float(p)))
    assert fired_ids(book) == []
    book.on_candle(candle(40, 120.0))
    fired = book.drain()
    assert [f.rule_id for f in fired] == ["lv"] and fired[0].data["side"] == "resistance"


def test_signal_grade_sector_and_transfer_rules() -> None:
    book = AlertBook()
    book.add(rule("s", "signal_change", instrument="coinbase:BTC-USD", interval="5m", to="bullish"))
    book.add(rule("g", "grade_band", symbol="BTC", grade="trader", direction="up"))
    book.add(rule("gm", "grade_move", symbol="BTC", grade="investor", points=10))
    book.add(rule("sec", "sector_rotation", sector="defi", top=2, direction="enters"))
    book.add(rule("cb", "correlation_breakdown", sector="defi"))
    book.add(rule("w", "large_transfer", chain="eth", token="USDC", direction="to_exchange"))
    book.on_signal("coinbase:BTC-USD", "5m", "bearish", "neutral", 1)
    book.on_signal("coinbase:BTC-USD", "5m", "bullish", "bearish", 2)
    assert fired_ids(book) == ["s"]
    book.on_grades({}, {"BTC": Grade("BTC", 1, 55.0, 50.0)})
    book.on_grades({"BTC": Grade("BTC", 1, 55.0, 50.0)}, {"BTC": Grade("BTC", 2, 61.0, 58.0)})
    assert fired_ids(book) == ["g"]
    book.on_grades({}, {"BTC": Grade("BTC", 3, 61.0, 61.0)})
    assert fired_ids(book) == ["gm"]
    index = IndexSeries([0], [1.0], None)
    old = SectorSnapshot("defi", [], index, 0, {}, None, rank=3)
    new = SectorSnapshot("defi", [], index, 1, {}, None, rank=2, breakdowns=["UNI"])
    book.on_sectors({"defi": old}, {"defi": new}, 5)
    assert sorted(fired_ids(book)) == ["cb", "sec"]
    whale = WhaleTransfer(
        "eth", "0xa0b8", "USDC", 1, 0, "0x1", 9, "0xs", "0xr", 1e7, "binance", None
    )
    book.on_transfer(whale)
    assert fired_ids(book) == ["w"]


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("price_cross", {"instrument": "x:A-B"}, "level"),
        ("price_cross", {"instrument": "x:A-B", "level": -1}, "level"),
        (
            "pct_move",
            {"instrument": "x:A-B", "percent": 1, "window_ms": 60000, "direction": "no"},
            "direction",
        ),
        ("sector_rotation", {"sector": "defi", "top": 0}, "top"),
        ("nope", {}, "kind"),
    ],
)
def test_invalid_params(kind: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as info:
        check_params(kind, params)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"instrument": "x:A-B", "level": 1, "extra": 1}, "extra"),
        ({"instrument": 7, "level": 1}, "instrument"),
        ({"instrument": "x:A-B", "level": True}, "level"),
        ({"instrument": "x:A-B", "level": 10**30}, "level"),
    ],
)
def test_params_types_and_bounds(params: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as info:
        check_params("price_cross", params)
    assert info.value.field == field


def test_huge_windows_are_refused() -> None:
    for name, value in (("window_ms", 10**300), ("window", 10**9), ("lookback", 5)):
        kind = {"window_ms": "pct_move", "window": "volume_spike", "lookback": "level_break"}[name]
        params: dict[str, Any] = {"instrument": "x:A-B", "percent": 1, "window_ms": 60_000}
        params[name] = value
        if kind != "pct_move":
            params = {"instrument": "x:A-B", name: value}
        with pytest.raises(RuleError):
            check_params(kind, params)
