"""Response bytes of the hot REST routes, serialized once and rebuilt when the data changes.

- **Tickers**: the body of `GET /v1/tickers/{i}` per instrument, kept with the `Ticker`
  record it was built from (records are immutable: the pipeline and the bus follower
  replace them) and the source label; a request whose ticker or label is not the one the
  bytes were built from rebuilds them. Exact: never a stale byte.
- **Candle pages**: the newest page of `GET /v1/candles/{i}` (no `start`, `end` or
  `cursor`) per (instrument, interval, limit), built from the store. A page is valid while
  this process's store writer has flushed no candle of its series since the page's store
  read began (the writer's `written_stamp` of the series, read before the query, is the
  page's stamp) and for at most `PAGE_MAX_AGE_S`: the bound for candles written by other
  processes (scale-out ingest, `cryptopulse import`), which this process cannot see. A
  page requested when it is half that age is rebuilt in the background while it keeps
  serving, so steady readers of an instrument that is not trading never wait for the
  store. One build per page at a time, however many requests wait for it.

docs/decisions.md ("Response bytes", and "Caches on the request path refresh ahead of
their bound") has the reasoning and the bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cryptopulse.domain.models import Ticker
from cryptopulse.runtime import Services

__all__ = ["MAX_PAGES", "PAGE_MAX_AGE_S", "MarketBytes", "PageKey", "market_bytes", "ticker_body"]

# How long a cached candle page may serve candles another process wrote since.
PAGE_MAX_AGE_S = 0.5
# Candle pages kept (oldest built dropped first): bounds memory whatever the queries.
MAX_PAGES = 1024

PageKey = tuple[str, str, int]  # (instrument, interval, limit)


def ticker_body(ticker: Ticker, source: str | None) -> dict[str, Any]:
    return {
        "instrument": ticker.instrument,
        "bid": ticker.bid,
        "ask": ticker.ask,
        "last": ticker.last,
        "bid_size": ticker.bid_size,
        "ask_size": ticker.ask_size,
        "volume_24h": ticker.volume_24h,
        "time": ticker.time,
        "received": ticker.received,
        "source": source,
    }


@dataclass(frozen=True, slots=True)
class _Page:
    stamp: int  # the writer's written_stamp of the series when the build began
    source: str | None
    born: float  # time.monotonic() when the build began
    body: bytes


class MarketBytes:
    """The caches of one running service (`market_bytes(services)` finds or makes it)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tickers: dict[str, tuple[Ticker, str | None, bytes]] = {}
        self._pages: dict[PageKey, _Page] = {}
        self._building: dict[tuple[PageKey, int, str | None], asyncio.Future[_Page]] = {}

    def ticker(self, instrument: str) -> bytes | None:
        """The ticker body of a canonical instrument name, None if it has no ticker."""
        market = self.services.market
        ticker = market.tickers.get(instrument)
        if ticker is None:
            return None
        source = market.source_of(instrument)
        entry = self._tickers.get(instrument)
        if entry is not None and entry[0] is ticker and entry[1] == source:
            return entry[2]
        body = orjson.dumps(ticker_body(ticker, source))
        self._tickers[instrument] = (ticker, source, body)  # bounded by the instruments
        return body

    def _current(self, key: PageKey, source: str | None, stamp: int) -> _Page | None:
        """The cached page `key` if built with `source` since the writer's `stamp` of its
        series (whatever its age)."""
        page = self._pages.get(key)
        if page is None or page.stamp != stamp or page.source != source:
            return None
        return page

    def fresh_page(self, key: PageKey, source: str | None) -> bytes | None:
        """The newest page `key` when `page` would answer with its cached bytes and start
        nothing (current, and young enough not to be refreshed ahead); else None."""
        page = self._current(key, source, self.services.writer.written_stamp(key[0], key[1]))
        if page is None or time.monotonic() - page.born >= PAGE_MAX_AGE_S / 2:
            return None
        return page.body

    async def page(
        self, key: PageKey, source: str | None, build: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The newest candle page `key`: cached if still valid, else from `build()` (the
        store read and serialization), run once for all the requests that need it."""
        stamp = self.services.writer.written_stamp(key[0], key[1])
        page = self._current(key, source, stamp)
        if page is not None:
            age = time.monotonic() - page.born
            if age < PAGE_MAX_AGE_S:
                if age >= PAGE_MAX_AGE_S / 2:
                    self._building_task(key, stamp, source, build)  # refresh ahead
                return page.body
        task = self._building_task(key, stamp, source, build)
        # A waiter that is cancelled (client gone) cancels its own wait, not the build.
        return (await asyncio.shield(task)).body

    def _building_task(
        self, key: PageKey, stamp: int, source: str | None, build: Callable[[], Awaitable[bytes]]
    ) -> asyncio.Future[_Page]:
        flight = (key, stamp, source)
        task = self._building.get(flight)
        if task is None:
            task = asyncio.ensure_future(self._build(key, stamp, source, build))
            self._building[flight] = task
            task.add_done_callback(lambda done: self._built(flight, done))
        return task

    async def _build(
        self, key: PageKey, stamp: int, source: str | None, build: Callable[[], Awaitable[bytes]]
    ) -> _Page:
        born = time.monotonic()
        return _Page(stamp, source, born, await build())

    def _built(self, flight: tuple[PageKey, int, str | None], task: asyncio.Future[_Page]) -> None:
        if self._building.get(flight) is task:
            del self._building[flight]
        if task.cancelled() or task.exception() is not None:
            return  # waiters re-raise the error; nothing is kept
        key = flight[0]
        page = task.result()
        current = self._pages.pop(key, None)
        if current is not None and current.born > page.born:
            page = current  # a newer build finished first: keep it
        while len(self._pages) >= MAX_PAGES:
            del self._pages[next(iter(self._pages))]
        self._pages[key] = page


def market_bytes(state: Any, services: Services) -> MarketBytes:
    """The caches of `services`, kept on the app's `state` (one per lifespan)."""
    cache: MarketBytes | None = getattr(state, "market_bytes", None)
    if cache is None or cache.services is not services:
        cache = MarketBytes(services)
        state.market_bytes = cache
    return cache
