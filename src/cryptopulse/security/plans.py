"""Plans: what a key may do per minute, per connection and per month.

Defaults below; `CRYPTOPULSE_PLANS` (JSON) replaces or adds plans by name, e.g.
`{"pro": {"rpm": 1200, "burst": 100}}` changes two numbers of `pro` and keeps the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["DEFAULT_PLANS", "Plan", "load_plans"]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    rpm: int  # REST requests per minute
    burst: int  # REST requests in any one second
    ws_connections: int  # open WebSocket connections per key (per worker)
    subscriptions: int  # channels per WebSocket connection
    ws_messages_per_s: int  # client ops per second per connection
    alert_rules: int  # per account
    webhooks: int  # webhook endpoints per account
    monthly_quota: int  # REST requests per calendar month (UTC) per key


DEFAULT_PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        # The read-only plan of anonymous callers when `anonymous_plan = "public"`.
        Plan("public", 60, 10, 2, 10, 5, 0, 0, 100_000),
        Plan("free", 120, 20, 2, 50, 10, 10, 1, 500_000),
        Plan("pro", 1_200, 100, 20, 200, 50, 200, 10, 10_000_000),
        Plan("enterprise", 12_000, 1_000, 200, 1_000, 200, 5_000, 100, 1_000_000_000),
    )
}


def load_plans(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Plan]:
    """The default plans with `overrides` applied; a new name starts from `free`."""
    plans = dict(DEFAULT_PLANS)
    known = {f.name for f in fields(Plan)} - {"name"}
    for name, values in (overrides or {}).items():
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"plan {name!r}: unknown fields {sorted(unknown)}")
        bad = [k for k, v in values.items() if not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"plan {name!r}: {sorted(bad)} must be integers >= 0")
        base = plans.get(name, replace(DEFAULT_PLANS["free"], name=name))
        plans[name] = replace(base, **values)
    return plans
