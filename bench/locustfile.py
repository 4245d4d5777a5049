"""Realistic mixed traffic for load-testing your own cryptopulse deployment with Locust.

    .venv/bin/pip install locust
    CRYPTOPULSE_KEY=cpk_live_... .venv/bin/locust -f bench/locustfile.py \\
        --host http://127.0.0.1:8000 --users 200 --spawn-rate 20 --run-time 5m --headless

Two kinds of users, weighted as a typical bot-and-dashboard population:

- `RestReader` (9 in 10): polls tickers most, then candle pages, trades and instruments,
  with 0.5-2 s think time, like a trading bot or a dashboard refresh;
- `StreamSubscriber` (1 in 10): holds a WebSocket on ``/v1/stream`` subscribed to a
  ticker and a candle channel, counts frames and reports each frame's delay against its
  ``time`` field as "stream lag" (exchange time to receipt: includes the feed's own lag).

Settings by environment: ``CRYPTOPULSE_KEY`` (an API key; a key per plan you sell gives
plan-by-plan figures: run one Locust per key), ``CRYPTOPULSE_INSTRUMENTS`` (comma-separated,
default ``BTC-USD,ETH-USD``). Keys are rate-limited by plan: a 429 is counted as a failure
by Locust, which is what you want to see when sizing plans.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from locust import HttpUser, User, between, events, task
from websockets.sync.client import connect

KEY = os.environ.get("CRYPTOPULSE_KEY", "")
INSTRUMENTS = os.environ.get("CRYPTOPULSE_INSTRUMENTS", "BTC-USD,ETH-USD").split(",")
HEADERS = {"Authorization": f"Bearer {KEY}"} if KEY else {}


class RestReader(HttpUser):
    """REST polling: tickers, candle pages, trades, instruments."""

    weight = 9
    wait_time = between(0.5, 2.0)

    @task(6)
    def ticker(self) -> None:
        i = random.choice(INSTRUMENTS)  # noqa: S311  # load mix, not security
        self.client.get(f"/v1/tickers/{i}", headers=HEADERS, name="/v1/tickers/{i}")

    @task(3)
    def candles(self) -> None:
        i = random.choice(INSTRUMENTS)  # noqa: S311
        self.client.get(
            f"/v1/candles/{i}?interval=1m&limit=100", headers=HEADERS, name="/v1/candles/{i}"
        )

    @task(1)
    def instruments(self) -> None:
        self.client.get("/v1/instruments", headers=HEADERS)


class StreamSubscriber(User):
    """One WebSocket per user, ticker + 1m candles of one instrument, for the whole run."""

    weight = 1
    wait_time = between(1, 1)

    def on_start(self) -> None:
        url = self.host.replace("http", "ws", 1) + "/v1/stream"
        self.ws = connect(url, additional_headers=HEADERS, open_timeout=10)
        i = random.choice(INSTRUMENTS)  # noqa: S311
        channels = [f"ticker:{i}", f"candles:{i}:1m"]
        self.ws.send(json.dumps({"op": "subscribe", "id": 1, "channels": channels}))

    def on_stop(self) -> None:
        self.ws.close()

    @task
    def read_for_a_second(self) -> None:
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                return
            msg: dict[str, Any] = json.loads(raw)
            if msg.get("type") == "data":
                lag_ms = time.time() * 1000 - msg["time"]
                events.request.fire(
                    request_type="WS",
                    name="stream lag",
                    response_time=lag_ms,
                    response_length=len(raw),
                    exception=None,
                    context={},
                )
