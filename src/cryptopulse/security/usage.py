"""Request counts per key per day, counted in memory and written to the store in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime

from cryptopulse.store.security import SecurityStore

__all__ = ["UsageRecorder", "day_of", "month_of"]

log = logging.getLogger(__name__)


def day_of(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d")


def month_of(epoch_s: float) -> str:
    """The first day of the month, YYYY-MM-01: usage rows of the month sort at or after it."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-01")


class UsageRecorder:
    """`count` is a dict update; a background task adds the counts to the store every
    `interval_s` (and at stop), so serving a request never waits for a write."""

    def __init__(self, db: SecurityStore, interval_s: float) -> None:
        self._db = db
        self._interval_s = interval_s
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last_used: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def count(self, key_id: str) -> None:
        now = time.time()
        self._counts[(key_id, day_of(now))] += 1
        self._last_used[key_id] = int(now * 1000)

    def pending(self, key_id: str, since_day: str) -> int:
        """Counted here but not yet in the store, since `since_day`."""
        return sum(n for (k, d), n in self._counts.items() if k == key_id and d >= since_day)

    def pending_days(self, key_ids: set[str]) -> Counter[str]:
        days: Counter[str] = Counter()
        for (key_id, day), n in self._counts.items():
            if key_id in key_ids:
                days[day] += n
        return days

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        counts, last_used = self._counts, self._last_used
        if not counts and not last_used:
            return
        self._counts, self._last_used = Counter(), {}
        try:
            await self._db.add_usage(counts, last_used)
        except Exception:
            # Put the batch back: counts are added, never lost to a store hiccup.
            self._counts.update(counts)
            for key_id, t in last_used.items():
                self._last_used[key_id] = max(t, self._last_used.get(key_id, 0))
            raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("usage flush failed; retrying")
