"""examples/hybrid_bot.py runs for a few seconds against the real server: history over
REST, live trades from the stream, a signed alert verified, a forged one refused."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent / "client"))
from serve import first_key, free_port, serve_env, start, stop, wait_ready  # noqa: E402

from cryptopulse.sources.auto import simulated_instruments  # noqa: E402
from cryptopulse.sources.simulator import SimMarket  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The bot's breakout band, and a simulator seed (CRYPTOPULSE_SIM_SEED) with which it breaks
# out within 15 s of being armed whenever the bot arms in the simulator's first 2 minutes
# (test_the_seed_breaks_out_wherever_the_bot_arms). An unseeded market can jump past a
# level before the rules are live and drift away for good: that made this test flaky.
BAND, SEED = 0.0001, 964


def test_hybrid_bot_smoke(tmp_path: Path) -> None:
    db, port, hook_port = tmp_path / "s.db", free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(
        db, port, CRYPTOPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS="true", CRYPTOPULSE_SIM_SEED=str(SEED)
    )
    try:
        wait_ready(base, server)
        deadline = time.monotonic() + 10
        key = first_key(db)
        while not _last_price(base, key):  # the bot arms around it
            assert time.monotonic() < deadline
            time.sleep(0.2)
        bot = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "hybrid_bot.py"), "--url", base, "--seconds", "20",
             "--webhook-port", str(hook_port), "--band", str(BAND)],
            env={"CRYPTOPULSE_API_KEY": key, "PATH": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert bot.stdout is not None
        armed = [json.loads(bot.stdout.readline()) for _ in range(2)]  # history, armed
        assert armed[1]["event"] == "armed"  # the receiver is up: send it a forged delivery
        forged = httpx.post(
            f"http://127.0.0.1:{hook_port}/hooks",
            content=b'{"type": "alert.fired"}',
            headers={"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())),
                     "webhook-signature": "v1,AAAA"},
        )  # fmt: skip
        assert forged.status_code == 401
        out, err = bot.communicate(timeout=45)
        # What the server saw, should no verified alert have arrived (kept for the message).
        seen = _alert_trail(base, key, armed[1]["webhook"])
    finally:
        stop(server)
    assert bot.returncode == 0, err
    events = armed + [json.loads(line) for line in out.splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary", events
    assert events[0]["event"] == "history"
    assert summary["trades"] > 0
    assert summary["rejected"] == 1
    log = (tmp_path / f"serve-{port}.log").read_text()[-4000:]
    assert summary["alerts_verified"] >= 1, f"{events}\n{seen}\n{log}"


def _last_price(base: str, key: str) -> float | None:
    reply = httpx.get(f"{base}/v1/tickers/sim:BTC-USD", headers={"Authorization": f"Bearer {key}"})
    return reply.json()["last"] if reply.is_success else None


def test_the_seed_breaks_out_wherever_the_bot_arms() -> None:
    """The seeded market of the smoke test crosses one of the bot's two levels within 60
    steps (15 s) of the rules going live, for every step at which the bot may read the
    price in the first 480 (2 minutes: the server's and the bot's start) and up to 3 steps
    between that read and the rules going live. Checked as the alert book checks: a price
    rising through the upper level or falling through the lower one, from the first price
    after the rules are live. Steps are the server's: the same seed and instruments (the
    smoke test's server's, in order) make the same prices step by step, whatever the clock."""
    configured = serve_env(Path("unused.db"))["CRYPTOPULSE_INSTRUMENTS"].split(",")
    market = SimMarket(simulated_instruments(configured), seed=SEED)
    arm, late, within = 480, 4, 60
    prices: list[list[float]] = []  # of sim:BTC-USD, per step, as the price hooks see them
    for i in range(arm + late + within):
        step = market.step((i + 1) * 250)
        trades = [t.price for t in step.trades if t.instrument == "sim:BTC-USD"]
        tickers = [t.last for t in step.tickers if t.instrument == "sim:BTC-USD"]
        prices.append(trades + [p for p in tickers if p is not None])
    missed, last = [], None
    for read in range(arm):
        last = prices[read][-1] if prices[read] else last
        if last is None:  # no trade yet: the test waits for a last price
            continue
        up, down = last * (1 + BAND), last * (1 - BAND)
        for delay in range(late):
            live = read + 1 + delay  # the first step whose prices the rules see
            after = [p for step in prices[live : live + within] for p in step]
            if not any(a < up <= b or b <= down < a for a, b in itertools.pairwise(after)):
                missed.append((read, delay))
    assert not missed, f"choose another SEED: no breakout after (step, delay) {missed[:5]}"


def _alert_trail(base: str, key: str, webhook: str) -> str:
    """The alert events and the webhook's delivery log, as the API reports them."""
    headers = {"Authorization": f"Bearer {key}"}
    events = httpx.get(f"{base}/v1/alerts/events", headers=headers, timeout=5).text
    deliveries = httpx.get(f"{base}/v1/webhooks/{webhook}/deliveries", headers=headers, timeout=5)
    return f"alert events: {events[:2000]}\ndeliveries: {deliveries.text[:2000]}"
