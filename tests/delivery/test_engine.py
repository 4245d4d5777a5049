"""The engine of a running service: every hook (prices, closed candles, signals, grades
and sectors, whale transfers) fires into the store as events with outbox rows; one-shot
state and cooldowns survive a reload; rules changed elsewhere are picked up (scale-out)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from cryptopulse.analytics.service import AnalyticsState
from cryptopulse.cli import app
from cryptopulse.delivery.engine import AlertService
from cryptopulse.domain.grades import Grade
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import WhaleTransfer
from cryptopulse.store.alerts import RuleRow

from .factories import T0, Clock, migrated


def rule_row(rule_id: str, kind: str, params: dict[str, object], **extra: object) -> RuleRow:
    values: dict[str, object] = {"cooldown_ms": 0, "one_shot": False, "status": "active"}
    values.update(extra)
    return RuleRow(
        rule_id,
        "alice",
        f"rule {rule_id}",
        kind,
        orjson.dumps(params).decode(),
        int(values["cooldown_ms"]),  # type: ignore[call-overload]
        bool(values["one_shot"]),
        str(values["status"]),
        T0,
        T0,
    )


async def test_every_hook_fires_into_the_store(tmp_path: Path) -> None:
    store = await migrated(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    engine = AlertService(store, clock=Clock())
    rows = [
        rule_row("p", "price_cross", {"instrument": "BTC-USD", "level": 10}, one_shot=True),
        rule_row(
            "m",
            "pct_move",
            {"instrument": "coinbase:BTC-USD", "percent": 5, "window_ms": 60_000},
        ),
        rule_row("s", "signal_change", {"instrument": "coinbase:BTC-USD", "interval": "1h"}),
        rule_row("g", "grade_band", {"symbol": "ETH"}),
        rule_row("w", "large_transfer", {"chain": "eth", "min_amount": 5}),
    ]
    for row in rows:
        await engine.db.insert_rule(row)
    await engine.load()
    engine.on_price("BTC-USD", 9.0, T0)
    engine.on_price("BTC-USD", 11.0, T0 + 1)
    await engine.on_closed_candle(
        Candle("coinbase:BTC-USD", "1m", T0, 100, 110, 100, 110, 1, 110, 1, True)
    )
    engine.on_signal("coinbase:BTC-USD", "1h", "bullish", "neutral", T0 + 2)
    before = AnalyticsState(as_of=T0, grades={"ETH": Grade("ETH", T0, 30.0, None)})
    after = AnalyticsState(as_of=T0 + 3, grades={"ETH": Grade("ETH", T0 + 3, 45.0, None)})
    engine.on_analytics(before, after)
    await engine.on_whale(
        WhaleTransfer("eth", "0xt", "USDC", 1, 0, "0xh", T0 + 4, "0xa", "0xb", 9.0, None, None)
    )
    assert await engine.flush() == 5
    events = await engine.db.list_events("alice", limit=10)
    kinds = sorted(orjson.loads(e.body)["data"]["kind"] for e in events)
    assert kinds == sorted(r.kind for r in rows)
    body = orjson.loads(next(e.body for e in events if e.rule_id == "p"))
    assert body["type"] == "alert.fired" and body["data"]["name"] == "rule p"
    stored = await engine.db.get_rule("alice", "p")
    assert stored is not None and stored.status == "fired" and stored.last_fired_at == T0 + 1
    # a new engine (a restart) keeps the one-shot off and the cooldown's last firing
    again = AlertService(store, clock=Clock())
    await again.load()
    assert not again.book.rules["p"].active
    assert again.book.rules["m"].last_fired == T0 + 60_000
    await store.close()


async def test_refresh_picks_up_changes_from_other_processes(tmp_path: Path) -> None:
    store = await migrated(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    ingest = AlertService(store, clock=Clock())
    await ingest.load()
    row = rule_row("p", "price_cross", {"instrument": "x:A-B", "level": 10})
    await ingest.db.insert_rule(row)  # as an API replica would
    await ingest.refresh()
    assert "p" in ingest.book.rules
    row.status, row.updated_at = "paused", T0 + 5
    await ingest.db.update_rule(row)
    await ingest.refresh()
    assert not ingest.book.rules["p"].active
    await ingest.db.delete_rule("alice", "p")
    await ingest.refresh()
    assert "p" not in ingest.book.rules
    await store.close()


def test_deliver_command_exists() -> None:
    result = CliRunner().invoke(app, ["deliver", "--help"])
    assert result.exit_code == 0 and "delivery worker" in result.output
