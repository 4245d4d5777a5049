"""The investor grade's on-chain input: each tracked token's daily activity, read from the
on-chain store, and its growth at a grade's as-of time (docs/grades.md, docs/onchain.md).

A token's activity on a UTC day is the distinct senders + receivers of its `1d` rollup,
summed over the chains that track a token of that symbol. A day on which a chain was
followed (it has a `1d` chain rollup) but the token did not move counts as 0; a day no
chain was followed is missing data, which `activity_growth` tolerates up to half a window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from cryptopulse.domain.onchain import DAY_MS, activity_growth
from cryptopulse.settings import ChainConfig
from cryptopulse.store.onchain import OnchainStore

__all__ = ["WINDOW_DAYS", "ActivityReader", "activity_factor", "daily_activity"]

WINDOW_DAYS = 7
# Two windows before the as-of day, plus one day so the hourly backfill of the last 24 h
# (whose as-of may fall on the previous day) finds its days too.
_LOOKBACK_DAYS = 2 * WINDOW_DAYS + 1

Daily = dict[str, dict[int, float]]  # symbol -> day open time -> activity


async def daily_activity(store: OnchainStore, chains: Sequence[ChainConfig], as_of: int) -> Daily:
    """Daily activity of every tracked token symbol over the days before `as_of`'s day."""
    today = as_of - as_of % DAY_MS
    first = today - _LOOKBACK_DAYS * DAY_MS
    out: Daily = {}
    for chain in chains:
        followed = await store.get_rollups(
            chain.name, "1d", start=first, end=today, limit=_LOOKBACK_DAYS + 1, descending=False
        )
        covered = {int(r.open_time) for r in followed}
        for token in chain.tokens:
            rows = await store.get_token_rollups(
                chain.name,
                token.address,
                "1d",
                start=first,
                end=today,
                limit=_LOOKBACK_DAYS + 1,
                descending=False,
            )
            moved = {int(r.open_time): float(r.senders + r.receivers) for r in rows}
            days = out.setdefault(token.symbol.upper(), {})
            for day in covered | moved.keys():
                days[day] = days.get(day, 0.0) + moved.get(day, 0.0)
    return {symbol: days for symbol, days in out.items() if days}


class ActivityReader:
    """`daily_activity` kept for `ttl_s` per as-of day: the complete days it covers change
    only while a feed catches up or a reorg crosses midnight, and grades are recomputed
    every analytics interval (one query per chain and per token each time otherwise)."""

    def __init__(
        self, store: OnchainStore, chains: Sequence[ChainConfig], ttl_s: float = 600.0
    ) -> None:
        self.store = store
        self.chains = list(chains)
        self.ttl_s = ttl_s
        self._cached: tuple[int, float, Daily] | None = None  # (day, read at, activity)

    async def read(self, as_of: int) -> Daily:
        today = as_of - as_of % DAY_MS
        cached = self._cached
        if cached is not None and cached[0] == today and time.monotonic() - cached[1] < self.ttl_s:
            return cached[2]
        daily = await daily_activity(self.store, self.chains, as_of)
        self._cached = (today, time.monotonic(), daily)
        return daily


def activity_factor(daily: Mapping[str, Mapping[int, float]], as_of: int) -> dict[str, float]:
    """Activity growth of each symbol over the `2 x WINDOW_DAYS` complete UTC days before
    `as_of`'s day (the day in progress would read as a fall); symbols without enough data
    are left out."""
    today = as_of - as_of % DAY_MS
    days = [today - (2 * WINDOW_DAYS - i) * DAY_MS for i in range(2 * WINDOW_DAYS)]
    out: dict[str, float] = {}
    for symbol, by_day in sorted(daily.items()):
        growth = activity_growth([by_day.get(d) for d in days], WINDOW_DAYS)
        if growth is not None:
            out[symbol] = growth
    return out
