"""The outbox relay: each committed alert event goes to the account's `alerts` stream
channel (bus channel `alerts:<account>`) and becomes one pending delivery per enabled
webhook endpoint; the deliveries are created and the outbox rows deleted in one
transaction (which deletes them first: two relays never take one row). A relay killed
before its commit publishes those events again on restart, with the same event ids
(at-least-once; clients de-duplicate by `id`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptopulse.bus.base import Bus
from cryptopulse.store.alerts import AlertStore, OutboxRow

__all__ = ["OutboxRelay", "account_channel"]


def account_channel(account: str) -> str:
    """The bus channel behind an account's `alerts` stream channel."""
    return f"alerts:{account}"


class OutboxRelay:
    def __init__(
        self, db: AlertStore, bus: Bus | None, clock: Callable[[], int], batch: int = 500
    ) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.batch = batch
        self.relayed = 0

    async def relay_once(self) -> int:
        """Relay up to one batch of outbox rows; returns how many."""
        count = await self.db.relay(self.batch, self._publish)
        self.relayed += count
        return count

    async def _publish(self, rows: list[OutboxRow]) -> list[dict[str, Any]]:
        """Publish `rows` on their accounts' channels; their deliveries, to insert."""
        now = self.clock()
        endpoints: dict[str, list[str]] = {}
        for account in {r.account for r in rows}:
            found = await self.db.list_endpoints(account, enabled_only=True)
            endpoints[account] = [e.id for e in found]
        if self.bus is not None:
            for row in rows:
                await self.bus.publish(account_channel(row.account), row.body.encode(), now)
        return [
            {
                "endpoint_id": endpoint_id,
                "event_id": row.event_id,
                "account": row.account,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": 0,
                "created_at": now,
            }
            for row in rows
            for endpoint_id in endpoints[row.account]
        ]
