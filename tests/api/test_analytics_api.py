"""End to end: `import candles` of the ten shared 5m files, then the real app in process.

Grades, sector indices, breadth, correlations and market caps are recomputed here with
pandas/numpy straight from the formulas in docs/grades.md and docs/sectors.md, from the
CSV files themselves, and compared with what the API serves.
"""

from __future__ import annotations

import asyncio
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI

from cryptopulse.api import create_app
from cryptopulse.importer import import_candles
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.store.sql import SQLStore

CANDLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "candles"
REGISTRY = Path(__file__).resolve().parents[2] / "src" / "cryptopulse" / "data" / "tokens.yaml"
SYMBOLS = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC")
STEP = 300_000
HOUR = 3_600_000
DAY = 24 * HOUR
TRADER = {"trend": 0.25, "momentum": 0.25, "risk_adjusted": 0.20, "liquidity": 0.15,
          "drawdown": 0.15}  # fmt: skip
INVESTOR = {"trend": 0.20, "momentum": 0.25, "risk_adjusted": 0.25, "liquidity": 0.15,
            "drawdown": 0.15}  # fmt: skip


async def _import_all(url: str) -> None:
    store = SQLStore(url)
    await store.migrate()
    try:
        for symbol in SYMBOLS:
            path = CANDLES / f"{symbol}-BTC-5m.csv.gz"
            await import_candles(store, path, f"binance:{symbol}-BTC", "5m")
    finally:
        await store.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the ten files imported by the real importer (built once per module)."""
    assert CANDLES.is_dir(), f"shared candles not found at {CANDLES}"
    path = tmp_path_factory.mktemp("imported") / "store.db"
    asyncio.run(_import_all(f"sqlite+aiosqlite:///{path}"))
    return path


# The app only reads in these tests: one app (and one event loop) serves the module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(imported: Path) -> AsyncIterator[FastAPI]:
    db = imported.parent / "app.db"
    shutil.copy(imported, db)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        source="sim",
        anonymous_plan="enterprise",
        first_key_file=str(imported.parent / "first-key.txt"),
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def get(client: httpx.AsyncClient, path: str, **params: object) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- the oracle ----------------------------------------------------------------------


def frames() -> dict[str, pd.DataFrame]:
    out = {}
    for symbol in SYMBOLS:
        df = pd.read_csv(CANDLES / f"{symbol}-BTC-5m.csv.gz").sort_values("open_time_ms")
        # The importer's documented stand-in for quote volume: volume x typical price.
        df["quote_volume"] = df["volume"] * (df["high"] + df["low"] + df["close"]) / 3
        out[symbol] = df.set_index("open_time_ms")
    return out


def factors(df: pd.DataFrame, as_of: int, window: int, depth: bool) -> dict[str, float] | None:
    w = df[(df.index > as_of - window) & (df.index <= as_of)]
    if len(w) < max(3, math.ceil(0.5 * window / STEP)):
        return None
    c = w["close"].to_numpy()
    r = np.diff(np.log(c))
    sd = r.std(ddof=0)
    return {
        "trend": c[-1] / c.mean() - 1,
        "momentum": c[-1] / c[0] - 1,
        "risk_adjusted": r.mean() / sd if sd > 0 else 0.0,
        "liquidity": float(np.median(w["quote_volume"]) if depth else w["quote_volume"].sum()),
        "drawdown": float((c / np.maximum.accumulate(c) - 1).min()),
    }


def oracle_grades(data: dict[str, pd.DataFrame], as_of: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {s: {} for s in data}
    for kind, window, weights, depth in (
        ("trader", DAY, TRADER, False),
        ("investor", 7 * DAY, INVESTOR, True),
    ):
        table = pd.DataFrame(
            {s: f for s, df in data.items() if (f := factors(df, as_of, window, depth))}
        ).T
        n = len(table)
        pct = (table.rank(method="average") - 1) / (n - 1) * 100
        grade = sum(weights[f] * pct[f] for f in weights)
        for symbol, value in grade.items():
            out[str(symbol)][kind] = float(value)
    return out


def oracle_index(data: dict[str, pd.DataFrame], members: list[str], supply: dict[str, float]):
    closes = pd.DataFrame({s: data[s]["close"] for s in members}).sort_index()
    previous = closes.ffill().shift(1)
    r = closes / previous - 1  # NaN where the member has no close now or none before
    equal = 100 * (1 + r.mean(axis=1, skipna=True).fillna(0)).cumprod()
    weights = previous * pd.Series(supply)[members]
    weights = weights.where(r.notna())
    step = (weights * r).sum(axis=1) / weights.sum(axis=1)
    cap = 100 * (1 + step.fillna(0)).cumprod()
    return equal, cap


def circulating() -> dict[str, float]:
    document = yaml.safe_load(REGISTRY.read_text())
    return {t["symbol"]: float(t["supply"]["circulating"]) for t in document["tokens"]}


# --- the tests -----------------------------------------------------------------------


async def test_grades_match_the_documented_formulas(client: httpx.AsyncClient) -> None:
    data = frames()
    as_of = max(int(df.index.max()) for df in data.values())
    now, before = oracle_grades(data, as_of), oracle_grades(data, as_of - DAY)
    body = await get(client, "/v1/grades", limit=100)
    assert body["time"] == as_of
    served = {g["symbol"]: g for g in body["data"]}
    assert set(served) == set(SYMBOLS)
    for symbol in SYMBOLS:
        g = served[symbol]
        assert g["instrument"] == f"binance:{symbol}-BTC"
        for kind in ("trader", "investor"):
            expected = now[symbol][kind]
            assert g[kind]["grade"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
            assert g[kind]["band"] == min(int(expected // 20), 4)
            change = expected - before[symbol][kind]
            assert g[kind]["change_24h"] == pytest.approx(change, rel=1e-9, abs=1e-9)
    detail = await get(client, "/v1/grades/eth")
    trend = detail["factors"]["trader"]["trend"]
    assert trend["value"] == pytest.approx(factors(data["ETH"], as_of, DAY, False)["trend"])
    history = await get(client, "/v1/grades/ETH/history", start=as_of - DAY, limit=100)
    points = history["data"]
    assert [p["time"] for p in points] == [as_of - h * HOUR for h in range(24, -1, -1)]
    assert points[-1]["trader"] == pytest.approx(now["ETH"]["trader"])


async def test_sector_indices_breadth_and_ranks(client: httpx.AsyncClient) -> None:
    data = frames()
    supply = circulating()
    listing = await get(client, "/v1/sectors")
    sectors = {s["id"]: s for s in listing["data"]}
    assert set(sectors) == {"l1", "payments", "privacy"}  # the sectors the ten assets are in
    assert sorted(s["rank"] for s in sectors.values()) == [1, 2, 3]
    for sector_id, members in (("l1", list(SYMBOLS)), ("privacy", ["DASH", "XMR", "ZEC"])):
        equal, cap = oracle_index(data, members, supply)
        served = sectors[sector_id]
        assert served["members"] == sorted(members)
        assert served["equal_index"] == pytest.approx(equal.iloc[-1], rel=1e-9)
        assert served["cap_index"] == pytest.approx(cap.iloc[-1], rel=1e-9)
        as_of = int(equal.index[-1])
        at = equal[equal.index <= as_of - DAY].iloc[-1]
        assert served["performance"]["24h"]["equal"] == pytest.approx(equal.iloc[-1] / at - 1)
        assert served["performance"]["30d"] == {"equal": None, "cap": None}  # 20 days of data
        above = [
            data[s]["close"].iloc[-1] > data[s]["close"].ewm(span=20, adjust=False).mean().iloc[-1]
            for s in members
        ]
        assert served["breadth"] == pytest.approx(sum(above) / len(members))
        history = await get(client, f"/v1/sectors/{sector_id}/history", limit=3)
        assert [p["equal_index"] for p in history["data"]] == pytest.approx(
            list(equal.iloc[-3:]), rel=1e-9
        )
    ranked = sorted(sectors.values(), key=lambda s: -s["performance"]["24h"]["equal"])
    assert [s["rank"] for s in ranked] == [1, 2, 3]


async def test_sector_detail_has_the_correlation_matrix(client: httpx.AsyncClient) -> None:
    data = frames()
    body = await get(client, "/v1/sectors/privacy")
    as_of = max(int(df.index.max()) for df in data.values())
    returns = {}
    for s in ("DASH", "XMR"):
        close = data[s]["close"]
        r = np.log(close / close.shift(1))
        gap = pd.Series(close.index, index=close.index).diff() != STEP
        returns[s] = r.mask(gap).dropna()
    both = pd.concat(returns, axis=1).dropna()
    both = both[(both.index > as_of - DAY) & (both.index <= as_of)]
    expected = np.corrcoef(both["DASH"], both["XMR"])[0, 1]
    assert body["correlations"]["DASH"]["XMR"] == pytest.approx(expected, rel=1e-9)
    assert body["correlations"]["XMR"]["XMR"] == 1.0
    assert set(body["member_correlation"]) == {"DASH", "XMR", "ZEC"}
    threshold = body["breakdown_threshold"]
    breakdowns = [s for s, v in body["member_correlation"].items() if v < threshold]
    assert body["breakdowns"] == sorted(breakdowns)


async def test_most_and_least_correlated_to_an_instrument(client: httpx.AsyncClient) -> None:
    data = frames()
    body = await get(client, "/v1/correlations/binance:ETH-BTC", window=288, limit=9)
    as_of = int(data["ETH"].index.max())

    def returns(symbol: str) -> pd.Series:
        close = data[symbol]["close"]
        gap = pd.Series(close.index, index=close.index).diff() != STEP
        return np.log(close / close.shift(1)).mask(gap).dropna()

    eth = returns("ETH")
    expected = {}
    for symbol in SYMBOLS:
        if symbol != "ETH":
            both = pd.concat([eth, returns(symbol)], axis=1).dropna()
            both = both[(both.index > as_of - 288 * STEP) & (both.index <= as_of)]
            expected[symbol] = np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1]
    most = body["most"]
    assert [m["symbol"] for m in most] == sorted(expected, key=lambda s: -expected[s])
    for m in most:
        assert m["correlation"] == pytest.approx(expected[m["symbol"]], rel=1e-9)
    assert body["least"][0]["symbol"] == min(expected, key=lambda s: expected[s])


async def test_signals_for_every_imported_instrument(client: httpx.AsyncClient) -> None:
    listing = await get(client, "/v1/signals", limit=100)
    assert listing["interval"] == "5m"
    names = [s["instrument"] for s in listing["data"]]
    assert names == [f"binance:{s}-BTC" for s in SYMBOLS]
    for signal in listing["data"]:
        assert signal["state"] in ("bullish", "bearish", "neutral")
        assert 0.0 <= signal["strength"] <= 1.0 and signal["indicators"]["rsi"] is not None
    one = await get(client, "/v1/signals/binance:ETH-BTC", limit=5)
    assert one["latest"]["time"] == 1517287800000
    changes = one["data"]
    assert 1 <= len(changes) <= 5
    states = [c["state"] for c in changes]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))  # changes only
    older = await get(client, "/v1/signals/binance:ETH-BTC", cursor=one["next_cursor"], limit=5)
    assert older["data"][-1]["time"] < changes[0]["time"]
    performance = await get(client, "/v1/signals/binance:ETH-BTC/performance")
    closes = frames()["ETH"]["close"]
    assert performance["hold_return"] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1)


async def test_indicators_levels_metrics_and_tokens(client: httpx.AsyncClient) -> None:
    eth = frames()["ETH"]
    page = await get(client, "/v1/indicators/binance:ETH-BTC", names="sma,rsi", limit=3)
    assert [p["time"] for p in page["data"]] == list(eth.index[-3:])
    sma = eth["close"].rolling(20).mean().iloc[-1]
    assert page["data"][-1]["values"]["sma"] == pytest.approx(sma, rel=1e-9)
    assert set(page["data"][0]["values"]) == {"sma", "rsi"}
    levels = await get(client, "/v1/levels/binance:ETH-BTC", max_levels=4)
    assert 1 <= len(levels["data"]) <= 4
    metrics = await get(client, "/v1/metrics/binance:ETH-BTC", interval="5m")
    assert metrics["total_return"] == pytest.approx(
        eth["close"].iloc[-1] / eth["close"].iloc[0] - 1
    )
    assert metrics["periods"] == len(eth) - 1
    token = await get(client, "/v1/tokens/eth")
    supply = circulating()["ETH"]
    assert token["price"] == pytest.approx(eth["close"].iloc[-1])
    assert token["market_cap"] == pytest.approx(eth["close"].iloc[-1] * supply)
    assert token["quote"] == "BTC" and token["supply"]["as_of"]
    l1 = await get(client, "/v1/tokens", sector="l1", limit=100)
    assert {"BTC", "ETH", "XMR"} <= {t["symbol"] for t in l1["data"]}


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/grades/NOPE", {}, 404, None),
        ("/v1/grades/ETH/history", {"start": "5", "end": "1"}, 422, "start"),
        ("/v1/grades", {"cursor": "!!"}, 422, "cursor"),
        ("/v1/grades", {"sort": "best"}, 422, "sort"),
        ("/v1/sectors/nowhere", {}, 404, None),
        ("/v1/sectors/nowhere/history", {}, 404, None),
        ("/v1/tokens/NOPE", {}, 404, None),
        ("/v1/tokens", {"sector": "nowhere"}, 404, None),
        ("/v1/indicators/binance:ETH-BTC", {"names": "rsi,nope"}, 422, "names"),
        ("/v1/indicators/binance:ETH-BTC", {"interval": "7m"}, 422, "interval"),
        ("/v1/indicators/binance:NOPE-BTC", {}, 404, None),
        ("/v1/signals/binance:ETH-BTC", {"cursor": "eyJkIjoiYSJ9"}, 422, "cursor"),
        ("/v1/signals", {"state": "up"}, 422, "state"),
        ("/v1/grades/ETH/history", {"end": str(2**64)}, 422, "end"),
        (
            "/v1/sectors/l1/history",
            {"cursor": "eyJkIjoiZCIsInAiOjk5OTk5OTk5OTk5OTk5OTk5OTk5fQ"},
            422,
            "cursor",
        ),
        ("/v1/metrics/binance:ETH-BTC", {"start": "0", "end": "1"}, 404, None),
        ("/v1/correlations/binance:ETH-BTC", {"window": "5"}, 422, "window"),
    ],
)
async def test_bad_input_is_a_problem_document(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["request_id"]
    if field is not None:
        assert field in {e["field"] for e in problem["errors"]}


async def test_openapi_declares_the_analytics_models(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/indicators/{instrument}",
        "/v1/signals",
        "/v1/signals/{instrument}",
        "/v1/signals/{instrument}/performance",
        "/v1/levels/{instrument}",
        "/v1/metrics/{instrument}",
        "/v1/grades",
        "/v1/grades/{symbol}",
        "/v1/grades/{symbol}/history",
        "/v1/tokens",
        "/v1/tokens/{symbol}",
        "/v1/sectors",
        "/v1/sectors/{sector_id}",
        "/v1/sectors/{sector_id}/history",
        "/v1/correlations/{instrument}",
    ):
        operation = spec["paths"][path]["get"]
        assert "$ref" in str(operation["responses"]["200"]), path
        assert "application/problem+json" in operation["responses"]["404"]["content"]
        assert operation["security"], path
    assert {"GradeList", "SectorDetail", "RegistryToken", "CorrelationsOut"} <= set(
        spec["components"]["schemas"]
    )
