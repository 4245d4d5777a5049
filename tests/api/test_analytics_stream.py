"""The `signals:<instrument>`, `grades` and `sectors` channels over a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from cryptopulse.api import create_app
from cryptopulse.api._stream_ops import OpError, normalize_channel
from cryptopulse.domain.models import Candle
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("signals:COINBASE:btc-usd", "signals:coinbase:BTC-USD"),
        ("signals:eth-btc", "signals:ETH-BTC"),
        ("grades", "grades"),
        ("sectors", "sectors"),
    ],
)
def test_analytics_channels_are_normalized(text: str, channel: str) -> None:
    assert normalize_channel(text) == channel


@pytest.mark.parametrize("text", ["signals:", "signals:BTC", "grades:ETH", "sectors:l1"])
def test_malformed_analytics_channels_are_refused(text: str) -> None:
    with pytest.raises(OpError) as caught:
        normalize_channel(text)
    assert caught.value.code == "unknown_channel"


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[tuple[str, Services]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        source="sim",
        anonymous_plan="pro",
        analytics_interval="1h",
        analytics_debounce_s=0.0,
        first_key_file=str(tmp_path / "first-key.txt"),
    )
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/stream", app.state.services
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame["type"] != "heartbeat":
                return frame


def hourly(instrument: str, i: int, close: float) -> Candle:
    return Candle(instrument, "1h", T0 + i * HOUR, close, close, close, close, 1.0, close, 1, True)


async def test_closed_candles_reach_signals_and_grades_subscribers(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, services), connect(url) as ws:
        channels = ["signals:binance:AAA-USDT", "grades", "sectors"]
        await ws.send(orjson.dumps({"op": "subscribe", "id": 1, "channels": channels}).decode())
        assert (await recv(ws))["type"] == "subscribed"
        # Closed candles as the pipeline hands them over: two symbols, 30 hours.
        for i in range(30):
            for name, close in (("binance:AAA-USDT", 100 + i), ("binance:BBB-USDT", 100 - i)):
                for hook in services.pipeline.closed_candle_hooks:
                    await hook(hourly(name, i, float(close)))
        seen: dict[str, list[dict[str, Any]]] = {}

        def graded() -> set[str]:
            return {g["symbol"] for f in seen.get("grades", []) for g in f["data"]["data"]}

        # Recomputations run as candles arrive: wait for one that has both symbols.
        while len(seen) < 3 or graded() != {"AAA", "BBB"}:
            frame = await recv(ws)
            assert frame["type"] == "data"
            seen.setdefault(frame["channel"], []).append(frame)
        signals = [f["data"] for f in seen["signals:binance:AAA-USDT"]]
        assert [s["time"] for s in signals] == [T0 + i * HOUR for i in range(len(signals))]
        assert signals[0]["instrument"] == "binance:AAA-USDT" and signals[0]["interval"] == "1h"
        seqs = [f["seq"] for f in seen["grades"]]
        assert seqs == list(range(1, len(seqs) + 1))
        assert {f["data"]["event"] for f in seen["grades"]} <= {"grades", "band_change"}
        assert seen["sectors"][0]["data"]["event"] == "sectors"
