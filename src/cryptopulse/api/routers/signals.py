"""Signals: the latest per instrument (memory), their history (store), their performance."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import Query
from starlette.responses import Response

from cryptopulse.analytics._payloads import signal_body, signal_row_body
from cryptopulse.analytics._signals import LiveSignals
from cryptopulse.api.analytics_schemas import SignalHistory, SignalList, SignalPerformanceOut
from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.errors import not_found
from cryptopulse.api.routers._analytics import (
    CursorQuery,
    End,
    InstrumentPath,
    Interval,
    Start,
    analytics_of,
    check_range,
    json_response,
    make_router,
    next_time_cursor,
    offset_page,
    resolve,
    time_page,
)
from cryptopulse.domain.models import Candle
from cryptopulse.domain.signals import Signal, SignalPerformance, signal_performance

router = make_router()

MAX_SIGNALS = 1000
MAX_PERFORMANCE_CANDLES = 20_000
State = Literal["bullish", "bearish", "neutral"]


@router.get("/signals", response_model=SignalList, summary="Latest signals")
async def list_signals(
    services: ServicesDep,
    interval: Annotated[Interval | None, Query(description="default: analytics interval")] = None,
    state: Annotated[State | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SIGNALS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """The current signal of every instrument tracked at `interval`, by instrument name."""
    analytics = await analytics_of(services)
    interval = interval or analytics.interval
    rows = [
        signal_body(s)
        for (name, iv), s in sorted(analytics.signals.items())
        if iv == interval and s.signal is not None and (state is None or s.signal.state == state)
    ]
    page, next_cursor = offset_page(rows, limit, cursor)
    return json_response({"interval": interval, "data": page, "next_cursor": next_cursor})


@router.get("/signals/{instrument}", response_model=SignalHistory, summary="Signal and its history")
async def get_signals(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval | None, Query(description="default: analytics interval")] = None,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SIGNALS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """The current signal (memory) and the stored changes of state, oldest first; without
    `start` the newest changes, `next_cursor` paging back in time."""
    inst = await resolve(services, instrument)
    check_range(start, end)
    analytics = await analytics_of(services)
    interval = interval or analytics.interval
    live = await analytics.ensure_signals(str(inst), interval)
    start, end, descending = time_page(start, end, cursor)
    rows = await analytics.store.get_signals(
        str(inst), interval, start=start, end=end, limit=limit + 1, descending=descending
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    body = {
        "instrument": str(inst),
        "interval": interval,
        "latest": signal_body(live) if live.signal is not None else None,
        "data": [signal_row_body(r) for r in rows],
        "next_cursor": next_time_cursor([r.time for r in rows], more, descending),
    }
    return json_response(body)


def _performance(
    instrument: str, interval: str, warm: Sequence[Candle], window: Sequence[Candle]
) -> SignalPerformance:
    """Signals replayed over warm-up + window, scored over the window (a worker thread)."""
    state = LiveSignals(instrument, interval)
    for candle in warm:
        state.update(candle)
    signals: list[Signal] = []
    for candle in window:
        result = state.update(candle)
        if result is not None:
            signals.append(result[0])
    return signal_performance(window, signals)


@router.get(
    "/signals/{instrument}/performance",
    response_model=SignalPerformanceOut,
    summary="Signal performance",
)
async def get_signal_performance(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval | None, Query(description="default: analytics interval")] = None,
    start: Start = None,
    end: End = None,
) -> Response:
    """Following the signals (long when bullish, short when bearish) over the closed
    candles in [start, end] (the newest 20,000 at most) against holding."""
    inst = await resolve(services, instrument)
    check_range(start, end)
    analytics = await analytics_of(services)
    interval = interval or analytics.interval
    store = analytics.store
    window = await store.candles_between(str(inst), interval, start, end, MAX_PERFORMANCE_CANDLES)
    if not window:
        raise not_found(f"no closed {interval} candles for {inst} in that range")
    warm = await store.candles_between(
        str(inst),
        interval,
        None,
        window[0].open_time - 1,
        services.settings.analytics_warmup_candles,
    )
    result = await asyncio.to_thread(_performance, str(inst), interval, warm, window)
    body = {"instrument": str(inst), "interval": interval, **dataclasses.asdict(result)}
    return json_response(body)
