"""Sectors (index, performance, rotation, breadth, correlations) and instrument correlations."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Path, Query
from starlette.responses import Response

from cryptopulse.analytics._payloads import sector_body
from cryptopulse.api.analytics_schemas import (
    CorrelationsOut,
    SectorDetail,
    SectorHistory,
    SectorList,
)
from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.errors import not_found
from cryptopulse.api.routers._analytics import (
    CursorQuery,
    End,
    InstrumentPath,
    Start,
    analytics_of,
    check_range,
    json_response,
    make_router,
    next_time_cursor,
    resolve,
    time_page,
)
from cryptopulse.domain.correlation import Correlated, Series, log_returns, rank_correlations
from cryptopulse.domain.instruments import parse_instrument

router = make_router()

MAX_ROWS = 1000
SectorPath = Annotated[str, Path(description="sector id", examples=["l1"], max_length=40)]


@router.get("/sectors", response_model=SectorList, summary="Sectors")
async def list_sectors(services: ServicesDep) -> Response:
    """Every sector with members that have candles, by id (docs/sectors.md)."""
    analytics = await analytics_of(services)
    state = analytics.state
    data = [
        sector_body(snap, analytics.registry.sectors[sid], state.scales.get(sid, (1.0, 1.0)))
        for sid, snap in sorted(state.sectors.items())
    ]
    return json_response({"time": state.as_of, "data": data})


@router.get("/sectors/{sector_id}", response_model=SectorDetail, summary="One sector")
async def get_sector(services: ServicesDep, sector_id: SectorPath) -> Response:
    """A sector with its correlation matrix and correlation breakdowns."""
    analytics = await analytics_of(services)
    state = analytics.state
    snap = state.sectors.get(sector_id)
    if snap is None:
        raise not_found(f"no sector {sector_id!r} with data; see /v1/sectors")
    body = sector_body(
        snap,
        analytics.registry.sectors[sector_id],
        state.scales.get(sector_id, (1.0, 1.0)),
        detail=True,
        threshold=analytics.sector_params.breakdown_threshold,
    )
    return json_response(body)


@router.get(
    "/sectors/{sector_id}/history", response_model=SectorHistory, summary="Sector index history"
)
async def get_sector_history(
    services: ServicesDep,
    sector_id: SectorPath,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Stored index levels (equal- and cap-weighted), oldest first; without `start` the
    newest, `next_cursor` paging back in time."""
    check_range(start, end)
    analytics = await analytics_of(services)
    if sector_id not in analytics.registry.sectors:
        raise not_found(f"unknown sector {sector_id!r}; see /v1/sectors")
    start, end, descending = time_page(start, end, cursor)
    rows = await analytics.store.get_sector_history(
        sector_id, start=start, end=end, limit=limit + 1, descending=descending
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    data = [{"time": r.time, "equal_index": r.equal_index, "cap_index": r.cap_index} for r in rows]
    next_cursor = next_time_cursor([r.time for r in rows], more, descending)
    return json_response({"id": sector_id, "data": data, "next_cursor": next_cursor})


def _rank(
    target: Series, others: dict[str, Series], interval_ms: int, window: int
) -> tuple[int | None, list[Correlated]]:
    """(as-of time, every other series by correlation to `target`) over the last `window`
    candles of the target (a worker thread)."""
    if not len(target):
        return None, []
    end = target.times[-1]
    start = end - window * interval_ms
    own = log_returns(target, interval_ms)
    returns = ((name, log_returns(s, interval_ms)) for name, s in sorted(others.items()))
    return end, rank_correlations(own, returns, start, end)


@router.get(
    "/correlations/{instrument}", response_model=CorrelationsOut, summary="Most/least correlated"
)
async def get_correlations(
    services: ServicesDep,
    instrument: InstrumentPath,
    window: Annotated[int, Query(ge=20, le=5000, description="candles")] = 288,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Response:
    """The instruments of the analytics universe (one per symbol) whose returns on the
    analytics interval correlate most and least with this one's over `window` candles."""
    inst = await resolve(services, instrument)
    analytics = await analytics_of(services)
    name = str(inst)
    target = (await analytics.ensure_series(name)).snapshot()
    if not len(target):
        raise not_found(f"no closed {analytics.interval} candles for {name}")
    others = {
        n: analytics.series[n].snapshot()
        for n in analytics.state.instruments.values()
        if n != name and n in analytics.series
    }
    as_of, ranked = await asyncio.to_thread(_rank, target, others, analytics.interval_ms, window)

    def out(c: Correlated) -> dict[str, object]:
        return {
            "instrument": c.name,
            "symbol": parse_instrument(c.name).base,
            "correlation": c.correlation,
            "overlap": c.overlap,
        }

    body = {
        "instrument": name,
        "interval": analytics.interval,
        "window": window,
        "time": as_of,
        "most": [out(c) for c in ranked[:limit]],
        "least": [out(c) for c in reversed(ranked[-limit:])],
    }
    return json_response(body)
