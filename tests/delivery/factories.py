"""Plain factories for delivery tests: a migrated store, endpoints, firings, a clock."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cryptopulse.delivery.engine import AlertService
from cryptopulse.delivery.sealing import seal
from cryptopulse.delivery.signing import generate_secret
from cryptopulse.domain.alerts import Rule
from cryptopulse.settings import Settings
from cryptopulse.store.alerts import AlertStore, EndpointRow, RuleRow
from cryptopulse.store.sql import SQLStore

T0 = 1_700_000_000_000


@dataclass
class Clock:
    """An injectable clock (ms): tests move it instead of sleeping."""

    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


async def migrated(url: str) -> SQLStore:
    store = SQLStore(url)
    await store.migrate()
    return store


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "webhook_allow_private_targets": True,
        "delivery_poll_interval_s": 0.05,
        "bootstrap_key": False,
    }
    return Settings(**(values | overrides))


async def add_endpoint(
    db: AlertStore, url: str, account: str = "alice", key: str | None = None
) -> tuple[EndpointRow, str]:
    secret = generate_secret()
    row = EndpointRow(
        f"wh_{secrets.token_hex(6)}",
        account,
        url,
        "",
        seal(secret, key),
        None,
        None,
        True,
        None,
        None,
        T0,
        T0,
    )
    await db.insert_endpoint(row)
    return row, secret


async def fire_crosses(
    engine: AlertService, count: int, account: str = "alice", time: int = T0
) -> str:
    """`count` firings of a new recurring price-cross rule (the only one on the book),
    written to the store; returns the rule's id."""
    for old in list(engine.book.rules):
        engine.drop(old)
    row = RuleRow(
        f"alr_{secrets.token_hex(6)}",
        account,
        "cross 100",
        "price_cross",
        '{"instrument": "coinbase:BTC-USD", "level": 100.0}',
        0,
        False,
        "active",
        T0,
        T0,
    )
    await engine.db.insert_rule(row)
    engine.book.on_price("coinbase:BTC-USD", 99.0, time)  # below the level, nothing indexed
    engine.put(row)
    engine.book.on_price("coinbase:BTC-USD", 99.0, time)
    for i in range(count):
        engine.book.on_price("coinbase:BTC-USD", 101.0 if i % 2 == 0 else 99.0, time + i + 1)
    await engine.flush()
    return row.id


def price_rule(rule_id: str, level: float) -> Rule:
    params = {"instrument": "coinbase:BTC-USD", "level": level}
    return Rule(rule_id, "alice", "price_cross", params)
