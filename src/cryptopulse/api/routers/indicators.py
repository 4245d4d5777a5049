"""Indicator history, support/resistance levels and quant metrics of one instrument.

Computed on request from stored closed candles, in a worker thread: the candle window is
bounded (page size plus the warm-up), so a request never holds the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from cryptopulse.api.analytics_schemas import IndicatorPage, LevelList, QuantMetricsOut
from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.errors import invalid_field, not_found
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
    resolve,
    time_page,
)
from cryptopulse.domain.indicators import NAMES, compute_history
from cryptopulse.domain.levels import find_levels
from cryptopulse.domain.models import Candle
from cryptopulse.domain.quant import quant_metrics

router = make_router()

MAX_POINTS = 1000
MAX_METRIC_CANDLES = 20_000
MAX_LEVEL_CANDLES = 5_000


def _names(text: str | None) -> list[str]:
    if text is None or not text.strip():
        return list(NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise invalid_field("names", f"unknown: {', '.join(unknown)}; one of {', '.join(NAMES)}")
    return list(dict.fromkeys(names))


def _values(candles: list[Candle], warm: int, names: list[str]) -> list[dict[str, object]]:
    values = compute_history(candles)[warm:]
    return [
        {"time": c.open_time, "values": {n: v[n] for n in names}}
        for c, v in zip(candles[warm:], values, strict=True)
    ]


@router.get("/indicators/{instrument}", response_model=IndicatorPage, summary="Indicator history")
async def get_indicators(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval, Query()] = "5m",
    names: Annotated[str | None, Query(description="comma-separated; default all")] = None,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Indicator values after each closed candle, oldest first, paged like /v1/candles.
    Each page is computed with `analytics_warmup_candles` candles of warm-up before it."""
    inst = await resolve(services, instrument)
    wanted = _names(names)
    check_range(start, end)
    analytics = await analytics_of(services)
    start, end, descending = time_page(start, end, cursor)
    store = analytics.store
    rows = await store.candles_between(
        str(inst), interval, start, end, limit + 1, newest=descending
    )
    more = len(rows) > limit
    rows = rows[-limit:] if descending else rows[:limit]
    warm: list[Candle] = []
    if rows:
        warm = await store.candles_between(
            str(inst),
            interval,
            None,
            rows[0].open_time - 1,
            services.settings.analytics_warmup_candles,
        )
    data = await asyncio.to_thread(_values, warm + rows, len(warm), wanted)
    body = {
        "instrument": str(inst),
        "interval": interval,
        "names": wanted,
        "data": data,
        "next_cursor": next_time_cursor([c.open_time for c in rows], more, descending),
    }
    return json_response(body)


@router.get("/levels/{instrument}", response_model=LevelList, summary="Support and resistance")
async def get_levels(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval, Query()] = "5m",
    lookback: Annotated[int, Query(ge=10, le=MAX_LEVEL_CANDLES, description="candles")] = 500,
    max_levels: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """The strongest levels in the newest `lookback` closed candles, strongest first."""
    inst = await resolve(services, instrument)
    analytics = await analytics_of(services)
    candles = await analytics.store.candles_between(str(inst), interval, None, None, lookback)
    levels = await asyncio.to_thread(find_levels, candles, max_levels=max_levels) if candles else []
    body = {
        "instrument": str(inst),
        "interval": interval,
        "close": candles[-1].close if candles else None,
        "time": candles[-1].open_time if candles else None,
        "data": [dataclasses.asdict(level) for level in levels],
    }
    return json_response(body)


def _aligned(candles: list[Candle], bench: list[Candle]) -> tuple[list[float], list[float] | None]:
    """Closes at the open times both series have (the benchmark's alignment)."""
    closes = {c.open_time: c.close for c in bench}
    common = [c for c in candles if c.open_time in closes]
    return [c.close for c in common], [closes[c.open_time] for c in common]


@router.get("/metrics/{instrument}", response_model=QuantMetricsOut, summary="Quant metrics")
async def get_metrics(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval, Query()] = "1h",
    start: Start = None,
    end: End = None,
    benchmark: Annotated[
        str | None, Query(max_length=80, description="instrument for beta and correlation")
    ] = None,
) -> Response:
    """Return, risk and shape of the closed candles in [start, end] (at most the newest
    20,000). With `benchmark`, both series are cut to the open times they share."""
    inst = await resolve(services, instrument)
    check_range(start, end)
    bench = await resolve(services, benchmark) if benchmark is not None else None
    analytics = await analytics_of(services)
    store = analytics.store
    candles = await store.candles_between(str(inst), interval, start, end, MAX_METRIC_CANDLES)
    if not candles:
        raise not_found(f"no closed {interval} candles for {inst} in that range")
    closes: list[float] = [c.close for c in candles]
    bench_closes: list[float] | None = None
    if bench is not None:
        bench_rows = await store.candles_between(
            str(bench), interval, start, end, MAX_METRIC_CANDLES
        )
        closes, bench_closes = _aligned(candles, bench_rows)
        if not closes:
            raise invalid_field("benchmark", "no candles at the same times as the instrument")
    metrics = await asyncio.to_thread(
        quant_metrics, closes, interval=interval, benchmark=bench_closes
    )
    body = {
        "instrument": str(inst),
        "interval": interval,
        "benchmark": str(bench) if bench is not None else None,
        "window_start": candles[0].open_time,
        "window_end": candles[-1].open_time,
        **dataclasses.asdict(metrics),
    }
    return json_response(body)
