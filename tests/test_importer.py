"""CSV import: trades through the live pipeline, candles upserted; checked against pandas."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest

from cryptopulse.domain.instruments import INTERVALS, InvalidInstrument
from cryptopulse.domain.models import Candle
from cryptopulse.importer import (
    ImportFileError,
    count_candles,
    import_candles,
    import_trades,
)
from cryptopulse.store.sql import SQLStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XRP_TRADES = DATA / "trades" / "XRP-ETH-trades.csv.gz"
ETH_CANDLES = DATA / "candles" / "ETH-BTC-5m.csv.gz"
T0 = 1_570_752_000_000  # 2019-10-11 00:00 UTC


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    store = SQLStore(f"sqlite+aiosqlite:///{tmp_path}/import.db")
    await store.migrate()
    yield store
    await store.close()


def write_csv(path: Path, lines: list[str], *, gzipped: bool = False) -> Path:
    text = "\n".join(lines) + "\n"
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


async def all_candles(store: SQLStore, instrument: str, interval: str) -> list[Candle]:
    return await store.get_candles(
        instrument, interval, start=None, end=None, limit=1_000_000, descending=False
    )


def pandas_candles(trades_csv: Path, interval: str) -> pd.DataFrame:
    """The oracle: an independent resample of the raw trades."""
    df = pd.read_csv(trades_csv, dtype={"trade_id": str})
    df = df.drop_duplicates("trade_id").sort_values("time_ms", kind="stable")
    df["quote"] = df["price"] * df["amount"]
    df.index = pd.to_datetime(df["time_ms"], unit="ms", utc=True)
    rule = {"1m": "1min", "5m": "5min"}[interval]
    bins = df.resample(rule)
    out = pd.DataFrame(
        {
            "open": bins["price"].first(),
            "high": bins["price"].max(),
            "low": bins["price"].min(),
            "close": bins["price"].last(),
            "volume": bins["amount"].sum(),
            "quote_volume": bins["quote"].sum(),
            "trades": bins["price"].count(),
        }
    )
    out = out[out["trades"] > 0]
    out.index = out.index.as_unit("ms").asi8
    return out


async def test_trades_import_matches_a_pandas_resample(store: SQLStore) -> None:
    result = await import_trades(store, XRP_TRADES, "binance:XRP-ETH")
    assert result.instrument == "binance:XRP-ETH"
    assert result.rows == result.trades == 12_477
    assert (result.duplicates, result.late) == (0, 0)
    assert set(result.candles) == set(INTERVALS)
    for interval in ("1m", "5m"):
        expected = pandas_candles(XRP_TRADES, interval)
        got = await all_candles(store, "binance:XRP-ETH", interval)
        assert result.candles[interval] == len(got) == len(expected)
        assert [c.open_time for c in got] == list(expected.index)
        for candle, (_, row) in zip(got, expected.iterrows(), strict=True):
            assert (candle.open, candle.high, candle.low, candle.close) == (
                row["open"],
                row["high"],
                row["low"],
                row["close"],
            )
            assert candle.trades == row["trades"]
            assert candle.volume == pytest.approx(row["volume"], rel=1e-12)
            assert candle.quote_volume == pytest.approx(row["quote_volume"], rel=1e-12)
            assert candle.closed  # 2019: every interval has long ended

    # Every interval, the composite pair and the raw trades are there too.
    daily = await all_candles(store, "binance:XRP-ETH", "1d")
    assert sum(c.trades for c in daily) == 12_477
    composite = await all_candles(store, "XRP-ETH", "1h")
    assert sum(c.trades for c in composite) == 12_477
    assert await store.count_trades("binance:XRP-ETH") == 12_477
    [row] = await store.list_instruments()
    assert (row.instrument, row.source) == ("binance:XRP-ETH", "import")


HEADER = "time_ms,trade_id,side,price,amount"


@pytest.mark.parametrize("gzipped", [False, True])
async def test_plain_or_gzip_unsorted_with_duplicates(
    store: SQLStore, tmp_path: Path, gzipped: bool
) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [
            HEADER,
            f"{T0 + 61_000},3,buy,12,1",
            f"{T0 + 1_000},1,sell,10,2",
            f"{T0 + 2_000},2,buy,11,1",
            f"{T0 + 2_000},2,buy,11,1",
            "",
        ],
        gzipped=gzipped,
    )
    result = await import_trades(store, path, "Binance:xrp-eth")
    assert (result.rows, result.trades, result.duplicates, result.late) == (4, 3, 1, 0)
    got = await all_candles(store, "binance:XRP-ETH", "1m")
    assert [(c.open_time, c.open, c.close, c.volume, c.trades) for c in got] == [
        (T0, 10, 11, 3, 2),
        (T0 + 60_000, 12, 12, 1, 1),
    ]


async def test_header_columns_in_any_order(store: SQLStore, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv", ["price,amount,side,trade_id,time_ms,extra", f"5,2,buy,a,{T0},x"]
    )
    await import_trades(store, path, "kraken:BTC-USD")
    [candle] = await all_candles(store, "kraken:BTC-USD", "1m")
    assert (candle.open, candle.volume, candle.quote_volume) == (5, 2, 10)


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        (f"{T0},2,buy,abc,1", 3, "price 'abc' is not a number"),
        (f"{T0},2,buy,-1,1", 3, "price '-1' must be a positive"),
        (f"{T0},2,buy,nan,1", 3, "must be a positive finite number"),
        (f"{T0},2,hold,1,1", 3, "side 'hold' is not buy or sell"),
        (f"{T0}.5,2,buy,1,1", 3, "time_ms"),
        (f"{T0},,buy,1,1", 3, "trade_id is empty"),
        (f"{T0},2,buy", 3, "expected 5 fields, got 3"),
        (f"{T0},2,buy,1,0", 3, "amount '0' must be a positive"),
    ],
)
async def test_bad_row_names_its_line_and_writes_nothing(
    store: SQLStore, tmp_path: Path, row: str, line: int, message: str
) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, f"{T0},1,buy,1,1", row, f"{T0},3,buy,1,1"])
    with pytest.raises(ImportFileError, match=message) as caught:
        await import_trades(store, path, "binance:XRP-ETH")
    assert caught.value.line == line
    assert f"line {line}" in str(caught.value)
    assert await store.count_trades() == 0
    assert await count_candles(store, "binance:XRP-ETH") == {}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (["time,id,side,price,size", "1,1,buy,1,1"], "header lacks column"),
    ],
)
async def test_bad_header(store: SQLStore, tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines))
    with pytest.raises(ImportFileError, match=message):
        await import_trades(store, path, "binance:XRP-ETH")


async def test_truncated_gzip_is_an_import_error(store: SQLStore, tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(XRP_TRADES.read_bytes()[:5_000])
    with pytest.raises(ImportFileError, match="unreadable"):
        await import_trades(store, path, "binance:XRP-ETH")
    assert await store.count_trades() == 0


@pytest.mark.parametrize("name", ["XRP-ETH", "binance:XRP", "nonsense"])
async def test_instrument_must_name_a_venue(store: SQLStore, name: str) -> None:
    with pytest.raises(InvalidInstrument):
        await import_trades(store, XRP_TRADES, name)


async def test_progress_reports_bytes(store: SQLStore) -> None:
    seen: list[tuple[str, int, int]] = []
    await import_trades(store, XRP_TRADES, "binance:XRP-ETH", progress=lambda *a: seen.append(a))
    size = XRP_TRADES.stat().st_size
    assert {phase for phase, _, _ in seen} == {"checking", "importing"}
    assert seen[-1] == ("importing", size, size)
    assert all(0 <= done <= total == size for _, done, total in seen)


# --- candles ---------------------------------------------------------------------------


async def test_candles_import_equals_the_file(store: SQLStore) -> None:
    result = await import_candles(store, ETH_CANDLES, "binance:ETH-BTC", "5m")
    expected = pd.read_csv(ETH_CANDLES)
    assert result.candles == len(expected) == 5_760
    got = await all_candles(store, "binance:ETH-BTC", "5m")
    assert [c.open_time for c in got] == list(expected["open_time_ms"])
    for candle, row in zip(got, expected.itertuples(), strict=True):
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            row.open,
            row.high,
            row.low,
            row.close,
            row.volume,
        )
        typical = (row.high + row.low + row.close) / 3
        assert candle.quote_volume == pytest.approx(row.volume * typical)
        assert (candle.trades, candle.closed) == (0, True)


async def test_candles_import_upserts(store: SQLStore, tmp_path: Path) -> None:
    header = "open_time_ms,open,high,low,close,volume"
    first = write_csv(tmp_path / "a.csv", [header, f"{T0},1,2,0.5,1.5,10"])
    second = write_csv(tmp_path / "b.csv", [header, f"{T0},1,3,0.5,2.5,20"])
    await import_candles(store, first, "binance:ETH-BTC", "1m")
    await import_candles(store, second, "binance:ETH-BTC", "1m")
    [candle] = await all_candles(store, "binance:ETH-BTC", "1m")
    assert (candle.high, candle.close, candle.volume) == (3, 2.5, 20)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"{T0 + 1},1,2,0.5,1.5,10", "not on a 5m boundary"),
        (f"{T0},1,2,0.5,1.5,10", "a second candle"),
        (f"{T0 + 300_000},1,0.9,0.5,0.8,10", "low <= open, close <= high"),
        (f"{T0 + 300_000},1,2,1.2,1.5,10", "low <= open, close <= high"),
        (f"{T0 + 300_000},1,2,0.5,1.5,-1", "volume '-1' must be a non-negative"),
        (f"{T0 + 300_000},1,2,0.5,x,1", "close 'x' is not a number"),
    ],
)
async def test_bad_candle_row(store: SQLStore, tmp_path: Path, row: str, message: str) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        ["open_time_ms,open,high,low,close,volume", f"{T0},1,2,0.5,1.5,10", row],
    )
    with pytest.raises(ImportFileError, match=message) as caught:
        await import_candles(store, path, "binance:ETH-BTC", "5m")
    assert caught.value.line == 3
    assert await count_candles(store, "binance:ETH-BTC") == {}


async def test_candles_unknown_interval(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="unknown interval"):
        await import_candles(store, ETH_CANDLES, "binance:ETH-BTC", "7m")
