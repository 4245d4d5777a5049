"""Request counts per key per day, counted in memory and written to the store in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
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

    def __init__(
        self,
        db: SecurityStore,
        interval_s: float,
        flushed: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
    ) -> None:
        self._db = db
        self._interval_s = interval_s
        self._flushed = flushed  # told the (key, month) counts each flush wrote
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last_used: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        # The UTC day being counted and when it ends (formatting a date costs ~5 µs).
        self._day = self._month = ""
        self._day_ends = 0.0
        self._by_month: Counter[tuple[str, str]] = Counter()  # (key, month): pending

    def count(self, key_id: str) -> None:
        now = time.time()
        if now >= self._day_ends:
            self._day, self._month = day_of(now), month_of(now)
            self._day_ends = (now // 86_400 + 1) * 86_400
        self._counts[(key_id, self._day)] += 1
        self._by_month[(key_id, self._month)] += 1
        self._last_used[key_id] = int(now * 1000)

    def pending(self, key_id: str, since_day: str) -> int:
        """Counted here but not yet in the store, since `since_day`."""
        return sum(n for (k, d), n in self._counts.items() if k == key_id and d >= since_day)

    def pending_in_month(self, key_id: str, month: str) -> int:
        """`pending(key_id, month)` for a `month_of` month, without a scan (per request)."""
        return self._by_month.get((key_id, month), 0)

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
        counts, last_used, by_month = self._counts, self._last_used, self._by_month
        if not counts and not last_used:
            return
        self._counts, self._last_used, self._by_month = Counter(), {}, Counter()
        try:
            await self._db.add_usage(counts, last_used)
        except Exception:
            # Put the batch back: counts are added, never lost to a store hiccup.
            self._counts.update(counts)
            self._by_month.update(by_month)
            for key_id, t in last_used.items():
                self._last_used[key_id] = max(t, self._last_used.get(key_id, 0))
            raise
        if self._flushed is not None:
            self._flushed(by_month)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("usage flush failed; retrying")
