"""Replaying the shared captures ingests every trade they hold, unchanged.

Trades are counted here with plain json, independently of the parsers under test.
"""

from __future__ import annotations

import calendar
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cryptopulse.bus.memory import MemoryBus
from cryptopulse.pipeline import Pipeline
from cryptopulse.sources.replay import ReplayCount, ReplaySource, replay_files
from cryptopulse.state import MarketState
from cryptopulse.store.sql import SQLStore
from cryptopulse.store.writer import StoreWriter
from fakes import CAPTURES, RecordingSink

FILES = ["COINBASE.ws.28.0", "BINANCE.ws.1.0", "KRAKEN.ws.48.0"]
TAKER = {"buy": "sell", "sell": "buy"}  # Coinbase reports the maker's side
KRAKEN_SIDE = {"b": "buy", "s": "sell"}


def server_messages(name: str) -> list[Any]:
    lines = (CAPTURES / name).read_text().splitlines()
    return [json.loads(line.split(": ", 1)[1]) for line in lines if line[:1].isdigit()]


def expected_trades() -> dict[str, list[tuple[float, float, str, int]]]:
    """instrument → [(price, size, taker side, time ms)], counted straight from the files."""
    found: dict[str, list[tuple[float, float, str, int]]] = {}
    for msg in server_messages("COINBASE.ws.28.0"):
        if msg.get("type") in ("match", "last_match"):
            stamp = time.strptime(msg["time"][:19], "%Y-%m-%dT%H:%M:%S")
            ms = calendar.timegm(stamp) * 1000 + int(msg["time"][20:23])
            row = (float(msg["price"]), float(msg["size"]), TAKER[msg["side"]], int(ms))
            found.setdefault(f"coinbase:{msg['product_id']}", []).append(row)
    for msg in server_messages("BINANCE.ws.1.0"):
        data = msg["data"]
        if data.get("e") == "aggTrade":
            row = (float(data["p"]), float(data["q"]), "sell" if data["m"] else "buy", data["T"])
            found.setdefault(f"binance:{msg['stream'].split('@')[0].upper()}", []).append(row)
    for msg in server_messages("KRAKEN.ws.48.0"):
        if isinstance(msg, list) and msg[2] == "trade":
            for price, size, stamp, side, *_ in msg[1]:
                row = (float(price), float(size), KRAKEN_SIDE[side], int(float(stamp) * 1000))
                found.setdefault(f"kraken:{msg[3]}", []).append(row)
    return found


def normalized(name: str) -> str:
    """Map the raw names used above to instruments: binance:NKNUSDT, kraken:XMR/USD..."""
    exchange, raw = name.split(":")
    if exchange == "binance":
        for quote in ("USDT", "BTC", "ETH", "EUR"):
            if raw.endswith(quote):
                return f"binance:{raw[: -len(quote)]}-{quote}"
    return f"{exchange}:{raw.replace('/', '-').replace('XBT', 'BTC')}"


@pytest.fixture
def expected() -> dict[str, list[tuple[float, float, str, int]]]:
    trades = {normalized(k): v for k, v in expected_trades().items()}
    # The files hold 107 Coinbase matches, 2 Binance aggTrades and 10 Kraken entries.
    assert Counter(k.split(":")[0] for k, v in trades.items() for _ in v) == {
        "coinbase": 107,
        "binance": 2,
        "kraken": 10,
    }
    return trades


async def test_replay_files_counts_every_trade(expected: dict[str, list[Any]]) -> None:
    sink = RecordingSink()
    counts = await replay_files([CAPTURES / f for f in FILES], sink)
    assert {k: c.trades for k, c in counts.items() if c.trades} == {
        k: len(v) for k, v in expected.items()
    }
    assert len(sink.trades) == sum(len(v) for v in expected.values())
    got: dict[str, list[tuple[float, float, str, int]]] = {}
    for t in sink.trades:
        got.setdefault(t.instrument, []).append((t.price, t.size, t.side, t.time))
    assert got == expected
    assert counts["binance:NKN-USDT"].tickers > 0 and counts["coinbase:SKL-USD"].tickers > 0


async def test_replay_into_the_real_pipeline_and_store(
    tmp_path: Path, expected: dict[str, list[tuple[float, float, str, int]]]
) -> None:
    store = SQLStore(f"sqlite+aiosqlite:///{tmp_path}/replay.db")
    await store.migrate()
    writer = StoreWriter(store)
    pipeline = Pipeline(MemoryBus(), MarketState(), writer)
    source = ReplaySource([CAPTURES / f for f in FILES])
    try:
        await source.run(pipeline)
        await writer.flush()
        assert pipeline.stats.duplicates == 0
        assert await store.count_trades() == sum(len(v) for v in expected.values())
        for instrument, rows in expected.items():
            stored = await store.get_trades(instrument, limit=1000)
            got = sorted((t.price, t.size, t.side, t.time) for t in stored)
            assert got == sorted(rows), instrument
    finally:
        await store.close()
    assert source.status.messages > 0 and source.status.connected is False
    assert set(source.counts) >= set(expected)
    assert all(isinstance(c, ReplayCount) for c in source.counts.values())


async def test_replay_keeps_recorded_timing_at_speed(tmp_path: Path) -> None:
    # Three messages 0.2 s apart at 2x speed take about 0.2 s.
    capture = tmp_path / "KRAKEN.ws.0"
    trade = '[1,[["1.0","2.0","1618678150.5","b","m",""]],"trade","XBT/USD"]'
    capture.write_text(
        "wss://ws.kraken.com <-> 100.0\n"
        + "".join(f"{100.0 + 0.2 * i}: {trade.replace('150.5', f'15{i}.5')}\n" for i in range(3))
    )
    sink = RecordingSink()
    start = time.monotonic()
    counts = await replay_files([capture], sink, speed=2.0)
    elapsed = time.monotonic() - start
    assert counts["kraken:BTC-USD"].trades == 3
    assert 0.15 <= elapsed < 2.0
    with pytest.raises(ValueError):
        await replay_files([capture], sink, speed=0)
