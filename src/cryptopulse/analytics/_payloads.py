"""JSON bodies shared by the REST responses and the `signals:`, `grades`, `sectors` channels."""

from __future__ import annotations

from typing import Any

from cryptopulse.analytics._signals import LiveSignals
from cryptopulse.domain.grades import BANDS, BandChange, Grade, band
from cryptopulse.domain.sectors import PERIODS, SectorSnapshot
from cryptopulse.domain.tokens import Sector
from cryptopulse.store.analytics import SignalRow


def signal_body(state: LiveSignals) -> dict[str, Any]:
    """The latest signal and indicator values of one (instrument, interval)."""
    signal = state.signal
    return {
        "instrument": state.instrument,
        "interval": state.interval,
        "time": state.last_time,
        "close": state.close,
        "state": signal.state if signal else None,
        "strength": signal.strength if signal else None,
        "rule": signal.rule if signal else None,
        "indicators": state.values,
    }


def signal_row_body(row: SignalRow) -> dict[str, Any]:
    return {"time": row.time, "state": row.state, "strength": row.strength, "rule": row.rule}


def _grade_part(value: float | None, change: float | None) -> dict[str, Any] | None:
    if value is None:
        return None
    b = band(value)
    return {"grade": value, "band": b, "label": BANDS[b], "change_24h": change}


def grade_body(
    grade: Grade,
    instrument: str,
    before: Grade | None,
    *,
    factors: bool = False,
) -> dict[str, Any]:
    """A symbol's grades; `before` is its grade 24 h earlier (for the change)."""

    def change(kind: str) -> float | None:
        now = getattr(grade, kind)
        then = getattr(before, kind) if before is not None else None
        return now - then if now is not None and then is not None else None

    body: dict[str, Any] = {
        "symbol": grade.symbol,
        "instrument": instrument,
        "time": grade.time,
        "trader": _grade_part(grade.trader, change("trader")),
        "investor": _grade_part(grade.investor, change("investor")),
    }
    if factors:
        body["factors"] = {
            kind: {f: {"value": v, "percentile": p} for f, (v, p) in detail.items()}
            for kind, detail in grade.factors.items()
        }
    return body


def band_change_body(change: BandChange, instrument: str) -> dict[str, Any]:
    return {
        "event": "band_change",
        "symbol": change.symbol,
        "instrument": instrument,
        "kind": change.kind,
        "previous": change.previous,
        "grade": change.grade,
        "from_band": change.from_band,
        "to_band": change.to_band,
        "label": BANDS[change.to_band],
        "time": change.time,
    }


def sector_body(
    snap: SectorSnapshot,
    sector: Sector,
    scale: tuple[float, float],
    *,
    detail: bool = False,
    threshold: float | None = None,
) -> dict[str, Any]:
    """A sector's latest state; `scale` chains the index levels to the stored history."""
    levels = snap.index.value_at(snap.time)
    equal = levels[0] * scale[0] if levels else None
    cap = levels[1] * scale[1] if levels and levels[1] is not None else None
    body: dict[str, Any] = {
        "id": sector.id,
        "name": sector.name,
        "description": sector.description,
        "members": snap.members,
        "time": snap.time,
        "equal_index": equal,
        "cap_index": cap,
        "performance": {
            name: {"equal": snap.performance[name][0], "cap": snap.performance[name][1]}
            for name in PERIODS
        },
        "breadth": snap.breadth,
        "rank": snap.rank,
        "rank_change_24h": snap.rank_change_24h,
    }
    if detail:
        body["correlations"] = snap.correlations
        body["member_correlation"] = snap.member_correlation
        body["breakdowns"] = snap.breakdowns
        body["breakdown_threshold"] = threshold
    return body
