"""examples/hybrid_bot.py runs for a few seconds against the real server: history over
REST, live trades from the stream, a signed alert verified, a forged one refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent / "client"))
from serve import first_key, free_port, start, stop, wait_ready  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_hybrid_bot_smoke(tmp_path: Path) -> None:
    db, port, hook_port = tmp_path / "s.db", free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(db, port, CRYPTOPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    try:
        wait_ready(base, server)
        deadline = time.monotonic() + 10
        key = first_key(db)
        while not httpx.get(f"{base}/v1/tickers/sim:BTC-USD",
                            headers={"Authorization": f"Bearer {key}"}).is_success:  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # A band of 0.002 %: the simulator's walk (~0.01 % a second) leaves it in seconds.
        bot = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "hybrid_bot.py"), "--url", base, "--seconds", "20",
             "--webhook-port", str(hook_port), "--band", "0.00002"],
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


def _alert_trail(base: str, key: str, webhook: str) -> str:
    """The alert events and the webhook's delivery log, as the API reports them."""
    headers = {"Authorization": f"Bearer {key}"}
    events = httpx.get(f"{base}/v1/alerts/events", headers=headers, timeout=5).text
    deliveries = httpx.get(f"{base}/v1/webhooks/{webhook}/deliveries", headers=headers, timeout=5)
    return f"alert events: {events[:2000]}\ndeliveries: {deliveries.text[:2000]}"
