"""The alert engine of a running service: the rules of every account in an `AlertBook`,
fed by the pipeline (prices, closed candles), the analytics service (signals, grades,
sectors) and the on-chain service (large transfers); firings written in batches, each
event with its outbox row in the same transaction.

Hooks only evaluate and collect (no I/O, no await on the hot path); a flusher writes what
fired every `alerts_flush_interval_s`. A batch that fails to write stays for the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from cryptopulse.domain.alerts import AlertBook, Firing, Rule
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import WhaleTransfer
from cryptopulse.sources.base import now_ms
from cryptopulse.store.alerts import AlertStore, EventRow, RuleRow
from cryptopulse.store.sql import SQLStore

if TYPE_CHECKING:
    from cryptopulse.analytics.service import AnalyticsState

__all__ = ["AlertService", "event_body", "new_event_id", "rule_from_row"]

log = logging.getLogger(__name__)

Clock = Callable[[], int]
_PAGE = 1000


def new_event_id(now: int) -> str:
    """`evt_` + 12 hex digits of ms + 16 random hex digits: unique, sorts by creation."""
    return f"evt_{now:012x}{secrets.token_hex(8)}"


def rule_from_row(row: RuleRow) -> Rule:
    return Rule(
        row.id,
        row.account,
        row.kind,
        orjson.loads(row.params),
        row.cooldown_ms,
        row.one_shot,
        row.status == "active",
        row.last_fired_at,
    )


def event_body(event_id: str, event_type: str, time: int, data: dict[str, Any]) -> bytes:
    """The JSON sent on the `alerts` channel and to webhooks (docs/alerts.md)."""
    return orjson.dumps({"id": event_id, "type": event_type, "time": time, "data": data})


class AlertService:
    """Owns the `AlertBook` of the process and writes its firings to the store."""

    def __init__(
        self,
        store: SQLStore,
        *,
        flush_interval_s: float = 0.1,
        refresh_s: float | None = None,
        clock: Clock = now_ms,
    ) -> None:
        self.db = AlertStore(store)
        self.book = AlertBook()
        self.names: dict[str, str] = {}  # rule id -> name (sent with each firing)
        self.flush_interval_s = flush_interval_s
        self.refresh_s = refresh_s  # scale-out: reload rules changed by API replicas
        self.clock = clock
        # Set after firings are committed: the relay of this process wakes up at once.
        self.committed = asyncio.Event()
        self.failed_flushes = 0
        self.written = 0  # alert events committed
        self._pending: list[Firing] = []
        self._stamps: dict[str, int] = {}  # rule id -> updated_at seen (refresh)
        self._tasks: list[asyncio.Task[None]] = []

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.load()
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="alerts-flush"))
        if self.refresh_s:
            self._tasks.append(asyncio.create_task(self._refresh_loop(), name="alerts-refresh"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.flush()

    async def load(self) -> None:
        """Every rule of every account from the store into the book."""
        after: str | None = None
        while True:
            rows = await self.db.list_rules(None, after=after, limit=_PAGE)
            for row in rows:
                self.put(row)
            if len(rows) < _PAGE:
                return
            after = rows[-1].id

    def put(self, row: RuleRow) -> None:
        """Add or replace one rule (after the API stored it)."""
        self.book.add(rule_from_row(row))
        self.names[row.id] = row.name
        self._stamps[row.id] = row.updated_at

    def drop(self, rule_id: str) -> None:
        self.book.remove(rule_id)
        self.names.pop(rule_id, None)
        self._stamps.pop(rule_id, None)

    # --- hooks (sync: they only evaluate) ------------------------------------------------

    def on_price(self, instrument: str, price: float, time: int) -> None:
        self.book.on_price(instrument, price, time)

    async def on_closed_candle(self, candle: Candle) -> None:
        self.book.on_candle(candle)

    def on_signal(
        self, instrument: str, interval: str, state: str, previous: str | None, time: int
    ) -> None:
        self.book.on_signal(instrument, interval, state, previous, time)

    def on_analytics(self, previous: AnalyticsState, current: AnalyticsState) -> None:
        if current.as_of is None:
            return
        self.book.on_grades(previous.grades, current.grades)
        self.book.on_sectors(previous.sectors, current.sectors, current.as_of)

    async def on_whale(self, whale: WhaleTransfer) -> None:
        self.book.on_transfer(whale)

    # --- writing firings -----------------------------------------------------------------

    async def flush(self) -> int:
        """Write what fired: events, outbox rows and rule state in one transaction."""
        self._pending.extend(self.book.drain())
        if not self._pending:
            return 0
        firings, self._pending = self._pending, []
        now = self.clock()
        events = []
        for f in firings:
            event_id = new_event_id(now)
            data = {"rule_id": f.rule_id, "name": self.names.get(f.rule_id), "kind": f.kind}
            body = event_body(event_id, "alert.fired", f.time, data | f.data)
            events.append(
                EventRow(event_id, f.account, f.rule_id, f.kind, f.time, now, body.decode())
            )
        fired = {
            f.rule_id: "fired"
            for f in firings
            if (rule := self.book.rules.get(f.rule_id)) is not None and rule.one_shot
        }
        try:
            await self.db.record_firings(events, fired)
        except Exception:
            self._pending[:0] = firings
            raise
        self.written += len(events)
        self.committed.set()
        return len(events)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except Exception:
                self.failed_flushes += 1
                log.exception("writing alert events failed; retrying")

    async def _refresh_loop(self) -> None:
        assert self.refresh_s is not None
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("reloading alert rules failed; retrying")

    async def refresh(self) -> None:
        """Apply rules created, changed or deleted by other processes (API replicas)."""
        seen: set[str] = set()
        after: str | None = None
        while True:
            rows = await self.db.list_rules(None, after=after, limit=_PAGE)
            for row in rows:
                seen.add(row.id)
                if self._stamps.get(row.id) != row.updated_at:
                    self.put(row)
            if len(rows) < _PAGE:
                break
            after = rows[-1].id
        for gone in set(self._stamps) - seen:
            self.drop(gone)
