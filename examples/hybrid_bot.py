"""A hybrid cryptopulse bot: REST for history, the stream for live data, signed webhooks
for alerts.

    CRYPTOPULSE_API_KEY=cpk_live_... python examples/hybrid_bot.py \\
        --url http://127.0.0.1:8000 --instrument sim:BTC-USD --seconds 30

1. History: the last 60 one-minute candles over REST, and their 20-candle SMA.
2. Live: trades and 1m candles of the instrument from the resumable stream (reconnects,
   resumes, refills gaps by itself), with the SMA updated on every closed candle.
3. Alerts: a webhook receiver on --webhook-port, registered with the API, plus a breakout
   pair of alerts: the price rising or falling through `--band` (0.02 % by default) of
   the current price (whichever way it leaves the band, one fires). Every delivery's
   Standard Webhooks signature is verified with the endpoint's secret; a forged or stale
   one is refused with 401. (The server must be able to reach the receiver: for a local
   run set CRYPTOPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS=true on the server.)

It prints one JSON line per event and a summary line when --seconds are up; the key needs
market:read, alerts:write and webhooks:write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import deque
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cryptopulse.client import AsyncClient

SMA = 20


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Bot:
    def __init__(self, client: AsyncClient, instrument: str, band: float = 0.0002) -> None:
        self.client = client
        self.instrument = instrument
        self.band = band
        self.closes: deque[float] = deque(maxlen=SMA)
        self.counts = {"trades": 0, "candles_closed": 0, "alerts_verified": 0, "rejected": 0}
        self.verifier: Webhook | None = None

    def sma(self) -> float | None:
        return sum(self.closes) / len(self.closes) if len(self.closes) == SMA else None

    async def history(self) -> None:
        page = await self.client.candles(self.instrument, interval="1m", limit=60)
        self.closes.extend(c.close for c in page.data if c.closed)
        say("history", candles=len(page.data), sma=self.sma())

    async def live(self) -> None:
        channels = [f"trades:{self.instrument}", f"candles:{self.instrument}:1m"]
        async for message in self.client.stream(channels):
            if message.channel.startswith("trades:"):
                self.counts["trades"] += 1
            elif message.data.get("closed"):
                self.counts["candles_closed"] += 1
                self.closes.append(float(message.data["close"]))
                say("candle", open_time=message.data["open_time"], sma=self.sma())

    async def receive(self, request: Request) -> Response:
        """A webhook delivery: verify the signature before believing a byte of it."""
        body = await request.body()
        try:
            assert self.verifier is not None
            payload = self.verifier.verify(body, dict(request.headers))
        except (WebhookVerificationError, AssertionError):
            self.counts["rejected"] += 1
            say("webhook_rejected")
            return Response(status_code=401)
        self.counts["alerts_verified"] += 1
        say("alert", type=payload.get("type"), data=payload.get("data"))
        return Response(status_code=204)

    async def arm(self, webhook_url: str) -> None:
        """Register the receiver and a breakout pair of alerts around the current price."""
        endpoint = await self.client.create_webhook(webhook_url, "hybrid bot")
        self.verifier = Webhook(endpoint.secret)
        last = (await self.client.ticker(self.instrument)).last or 0.0
        rules = []
        up, down = last * (1 + self.band), last * (1 - self.band)
        for direction, level in (("up", up), ("down", down)):
            rule = await self.client.create_alert(
                {
                    "name": f"{self.instrument} breaks {direction} through {level:.2f}",
                    "kind": "price_cross",
                    "params": {
                        "instrument": self.instrument,
                        "level": level,
                        "direction": direction,
                    },
                    "cooldown_ms": 60_000,  # at most one firing a minute
                }
            )
            rules.append(rule.id)
        say("armed", webhook=endpoint.id, rules=rules, price=last)


async def main(args: argparse.Namespace) -> None:
    async with AsyncClient(args.url, os.environ["CRYPTOPULSE_API_KEY"]) as client:
        bot = Bot(client, args.instrument, args.band)
        receiver = Starlette(routes=[Route("/hooks", bot.receive, methods=["POST"])])
        config = uvicorn.Config(receiver, host="127.0.0.1", port=args.webhook_port,
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        await bot.history()
        await bot.arm(f"http://127.0.0.1:{args.webhook_port}/hooks")
        live = asyncio.create_task(bot.live())
        await asyncio.sleep(args.seconds)
        live.cancel()
        server.should_exit = True
        await asyncio.gather(live, serving, return_exceptions=True)
        say("summary", **bot.counts, sma=bot.sma())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--instrument", default="sim:BTC-USD")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--webhook-port", type=int, default=8765)
    parser.add_argument("--band", type=float, default=0.0002, help="alert band, a fraction")
    asyncio.run(main(parser.parse_args()))
