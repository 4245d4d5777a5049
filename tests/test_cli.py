"""The `cryptopulse` command, run in-process on a temporary SQLite store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptopulse.cli import app
from cryptopulse.importer import count_candles
from cryptopulse.settings import Settings
from cryptopulse.store.sql import InstrumentRow, SQLStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XRP_TRADES = DATA / "trades" / "XRP-ETH-trades.csv.gz"
ETH_CANDLES = DATA / "candles" / "ETH-BTC-5m.csv.gz"
CAPTURES = [
    DATA / "captures" / name for name in ("COINBASE.ws.28.0", "BINANCE.ws.1.0", "KRAKEN.ws.48.0")
]


def db_url(tmp_path: Path, name: str = "x.db") -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/{name}"


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run the command with the store URL in the environment, as a user would."""
    runner = CliRunner()
    result = runner.invoke(
        app, list(args), env={"CRYPTOPULSE_DATABASE_URL": db_url(tmp_path)}, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


async def _instruments(url: str) -> list[InstrumentRow]:
    store = SQLStore(url)
    try:
        return await store.list_instruments()
    finally:
        await store.close()


async def _store_counts(url: str, instrument: str) -> tuple[int, dict[str, int]]:
    store = SQLStore(url)
    try:
        return await store.count_trades(instrument), await count_candles(store, instrument)
    finally:
        await store.close()


def store_counts(url: str, instrument: str) -> tuple[int, dict[str, int]]:
    return asyncio.run(_store_counts(url, instrument))


def test_help_lists_the_commands(tmp_path: Path) -> None:
    code, stdout, _ = invoke(tmp_path, "--help")
    assert code == 0
    for command in ("serve", "replay", "import", "migrate"):
        assert command in stdout


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    code, stdout, _ = invoke(tmp_path, "migrate")
    assert code == 0 and "up to date" in stdout
    assert asyncio.run(_instruments(db_url(tmp_path))) == []
    assert invoke(tmp_path, "migrate")[0] == 0  # idempotent


def test_database_url_option_wins_over_the_environment(tmp_path: Path) -> None:
    other = db_url(tmp_path, "other.db")
    code, stdout, _ = invoke(tmp_path, "--database-url", other, "migrate")
    assert code == 0 and "other.db" in stdout
    assert (tmp_path / "other.db").exists() and not (tmp_path / "x.db").exists()


def test_import_trades(tmp_path: Path) -> None:
    code, stdout, _ = invoke(
        tmp_path, "import", "trades", str(XRP_TRADES), "--instrument", "binance:XRP-ETH"
    )
    assert code == 0, stdout
    assert "12477 trades imported from 12477 rows" in stdout
    trades, candles = store_counts(db_url(tmp_path), "binance:XRP-ETH")
    assert trades == 12_477
    for interval, count in candles.items():
        assert re.search(rf"│ {interval}\s+│ {count}\s+│", stdout)
    assert candles["1m"] > candles["5m"] > candles["1d"] > 0


def test_import_trades_bad_row_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time_ms,trade_id,side,price,amount\n1000,1,buy,1,1\n2000,2,buy,oops,1\n")
    code, _, stderr = invoke(tmp_path, "import", "trades", str(path), "-i", "binance:XRP-ETH")
    assert code == 1
    assert "line 3" in stderr and "price 'oops' is not a number" in stderr
    assert "nothing was imported" in stderr
    assert store_counts(db_url(tmp_path), "binance:XRP-ETH") == (0, {})


@pytest.mark.parametrize("instrument", ["XRP-ETH", "binance:XRP"])
def test_import_needs_a_venue_instrument(tmp_path: Path, instrument: str) -> None:
    code, _, stderr = invoke(tmp_path, "import", "trades", str(XRP_TRADES), "-i", instrument)
    assert code == 2 and "--instrument" in stderr


def test_import_missing_file(tmp_path: Path) -> None:
    code, _, stderr = invoke(
        tmp_path, "import", "trades", str(tmp_path / "nope.csv"), "-i", "binance:XRP-ETH"
    )
    assert code == 2 and "Invalid value for 'file'" in stderr


def test_import_candles(tmp_path: Path) -> None:
    args = ("import", "candles", str(ETH_CANDLES), "-i", "binance:ETH-BTC", "--interval", "5m")
    code, stdout, _ = invoke(tmp_path, *args)
    assert code == 0 and "5760 5m candles upserted" in stdout
    assert store_counts(db_url(tmp_path), "binance:ETH-BTC")[1] == {"5m": 5_760}
    [row] = asyncio.run(_instruments(db_url(tmp_path)))
    assert (row.instrument, row.source) == ("binance:ETH-BTC", "import")


def test_import_candles_bad_interval(tmp_path: Path) -> None:
    args = ("import", "candles", str(ETH_CANDLES), "-i", "binance:ETH-BTC", "--interval", "7m")
    code, _, stderr = invoke(tmp_path, *args)
    assert code == 2 and "--interval" in stderr


def test_serve_builds_settings_from_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cryptopulse.server

    seen: list[Settings] = []
    monkeypatch.setattr(cryptopulse.server, "run", seen.append)
    code, _, _ = invoke(
        tmp_path,
        "serve",
        "--source",
        "sim",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--instruments",
        "coinbase:BTC-USD, binance:ETH-USDT",
    )
    assert code == 0
    [settings] = seen
    assert (settings.source, settings.host, settings.port) == ("sim", "127.0.0.1", 8123)
    assert settings.instruments == ["coinbase:BTC-USD", "binance:ETH-USDT"]
    assert settings.database_url == db_url(tmp_path)


def test_serve_defaults_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cryptopulse.server

    seen: list[Settings] = []
    monkeypatch.setattr(cryptopulse.server, "run", seen.append)
    monkeypatch.setenv("CRYPTOPULSE_PORT", "8555")
    assert invoke(tmp_path, "serve")[0] == 0
    assert seen[0].port == 8555 and seen[0].source == Settings().source


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "bogus"), "source must be auto, live, sim or replay:PATH"),
        (("--instruments", "BTC/USD"), "--instruments"),
    ],
)
def test_serve_refuses_bad_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    import cryptopulse.server

    monkeypatch.setattr(cryptopulse.server, "run", lambda settings: None)
    code, _, stderr = invoke(tmp_path, "serve", *args)
    assert code == 2 and message in stderr


def test_replay_prints_what_the_store_holds(tmp_path: Path) -> None:
    code, stdout, _ = invoke(tmp_path, "replay", *map(str, CAPTURES))
    assert code == 0, stdout
    rows = re.findall(r"│ (\w+:[\w-]+)\s+│\s+(\d+) │\s+(\d+) │\s+(\d+) │", stdout)
    exchanges = {name.split(":")[0] for name, *_ in rows}
    assert exchanges == {"coinbase", "binance", "kraken"}
    for name, trades, _tickers, candles in rows:
        stored_trades, stored_candles = store_counts(db_url(tmp_path), name)
        assert int(trades) == stored_trades, name
        assert int(candles) == sum(stored_candles.values()), name
    assert sum(int(r[1]) for r in rows) > 50


def test_replay_speed_must_be_positive(tmp_path: Path) -> None:
    code, _, stderr = invoke(tmp_path, "replay", "--speed", "0", str(CAPTURES[0]))
    assert code == 2 and "--speed" in stderr
