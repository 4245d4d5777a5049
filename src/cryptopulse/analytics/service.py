"""The analytics service: indicators and signals on every closed candle, grades and sectors
recomputed after each close of the analytics interval, history written to the store.

Closed candles come from the pipeline hook into a bounded queue; one consumer applies them
in order, so a series is warmed from the store (in a worker thread) before its first live
candle is applied, and never twice. The latest state lives in memory for the API; the
CPU-heavy recomputation runs in a worker thread on an immutable snapshot of the series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cryptopulse.analytics import _payloads
from cryptopulse.analytics._compute import Computed, compute
from cryptopulse.analytics._onchain import ActivityReader
from cryptopulse.analytics._series import SeriesBuffer, choose_instruments
from cryptopulse.analytics._signals import LiveSignals, warm_state
from cryptopulse.analytics.registry import load_registry
from cryptopulse.bus.base import Bus
from cryptopulse.domain.grades import Grade, GradeParams, band_changes
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle
from cryptopulse.domain.sectors import SectorParams, SectorSnapshot
from cryptopulse.domain.tokens import TokenRegistry
from cryptopulse.settings import Settings
from cryptopulse.store.analytics import AnalyticsStore, GradeRow, SectorRow, SignalRow
from cryptopulse.store.onchain import OnchainStore
from cryptopulse.store.sql import SQLStore

__all__ = ["AnalyticsService"]

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_QUEUE = 100_000  # closed candles waiting for the consumer; past this they are dropped
_FLUSH_S = 1.0  # signal history is written in batches this often


@dataclass(slots=True)
class AnalyticsState:
    """What the API serves: the outcome of the latest recomputation."""

    as_of: int | None = None
    instruments: dict[str, str] = field(default_factory=dict)  # symbol -> chosen instrument
    grades: dict[str, Grade] = field(default_factory=dict)
    grades_24h: dict[str, Grade] = field(default_factory=dict)  # the grade 24 h before
    sectors: dict[str, SectorSnapshot] = field(default_factory=dict)
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)  # level chaining


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body)


class AnalyticsService:
    def __init__(
        self,
        settings: Settings,
        store: SQLStore,
        bus: Bus,
        registry: TokenRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.interval = settings.analytics_interval
        self.interval_ms = INTERVALS[self.interval]
        self.quotes = [q.strip().upper() for q in settings.analytics_quotes.split(",") if q]
        self.store = AnalyticsStore(store)
        self.bus = bus
        self.registry = registry or load_registry(settings.tokens_path)
        # The investor grade's on-chain factor reads the day rollups (docs/grades.md).
        self.onchain = (
            ActivityReader(OnchainStore(store), settings.onchain_chains)
            if settings.onchain_chains
            else None
        )
        self.grade_params = GradeParams(interval_ms=self.interval_ms)
        self.sector_params = SectorParams(
            interval_ms=self.interval_ms,
            breakdown_threshold=settings.sector_breakdown_threshold,
        )
        self.series: dict[str, SeriesBuffer] = {}
        self.signals: dict[tuple[str, str], LiveSignals] = {}
        self.state = AnalyticsState()
        self.ready = asyncio.Event()
        self.dropped = 0
        self._queue: asyncio.Queue[Candle] = asyncio.Queue(_QUEUE)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._dirty = asyncio.Event()
        self._pending: list[SignalRow] = []
        self._anchors: dict[str, SectorRow] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Alert hooks (evaluation only, not awaited): a signal changed state (instrument,
        # interval, state, previous, time); grades and sectors recomputed (previous, new).
        self.signal_hooks: list[Callable[[str, str, str, str | None, int], None]] = []
        self.state_hooks: list[Callable[[AnalyticsState, AnalyticsState], None]] = []

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="analytics"))
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="analytics-flush"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self._flush()

    async def wait_ready(self, within_s: float) -> bool:
        """True once the start-up load from the store is done (waiting up to `within_s`)."""
        try:
            await asyncio.wait_for(self.ready.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def on_closed_candle(self, candle: Candle) -> None:
        """Pipeline hook: never blocks; a full queue drops the candle and counts it."""
        try:
            self._queue.put_nowait(candle)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        try:
            await self.bootstrap()
        except Exception:
            log.exception("analytics start-up load failed; serving live closes only")
        finally:
            self.ready.set()
        recompute = asyncio.create_task(self._recompute_loop(), name="analytics-recompute")
        try:
            while True:
                candle = await self._queue.get()
                try:
                    await self.apply(candle)
                except Exception:
                    log.exception("analytics failed on %s %s", candle.instrument, candle.interval)
        finally:
            recompute.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recompute

    # --- loading from the store -------------------------------------------------------

    async def bootstrap(self) -> None:
        """Load every instrument with candles of the analytics interval, warm its signals,
        and compute grades (with 24 h of hourly backfill) and sectors once."""
        self._anchors = await self.store.last_sector_points()
        names = await self.store.candle_instruments(self.interval)
        for name in sorted(names):
            await self.ensure_series(name)
            await self.ensure_signals(name, self.interval)
        await self.recompute(backfill=True)

    async def ensure_series(self, instrument: str) -> SeriesBuffer:
        buffer = self.series.get(instrument)
        if buffer is None:
            rows = await self.store.recent_candles(
                instrument, self.interval, self.settings.analytics_history_candles
            )
            buffer = self.series.get(instrument)  # another caller may have loaded it
            if buffer is None:
                buffer = self.series[instrument] = SeriesBuffer(
                    self.settings.analytics_history_candles
                )
                buffer.extend(rows)
        return buffer

    async def ensure_signals(
        self, instrument: str, interval: str, before: int | None = None
    ) -> LiveSignals:
        """The signal state of a series, warmed from the newest stored candles (before
        `before`, when given) the first time it is asked for."""
        key = (instrument, interval)
        found = self.signals.get(key)
        if found is not None:
            return found
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self.signals.get(key)
            if found is not None:  # warmed while this caller waited for the lock
                return found
            end = before - 1 if before is not None else None
            candles = await self.store.candles_between(
                instrument, interval, None, end, self.settings.analytics_warmup_candles
            )
            state, rows = await asyncio.to_thread(warm_state, instrument, interval, candles)
            await self.store.upsert_signals(rows)
            self.signals[key] = state
            # Later callers find the state first; waiters hold the lock they wait on.
            del self._locks[key]
            return state

    # --- live closes ------------------------------------------------------------------

    async def apply(self, candle: Candle) -> None:
        """Advance indicators and signals on a closed candle, publish, queue history."""
        state = await self.ensure_signals(candle.instrument, candle.interval, candle.open_time)
        before = state.signal.state if state.signal is not None else None
        result = state.update(candle)
        if result is not None:
            signal, changed = result
            if changed:
                self._pending.append(state.row(signal))
                for hook in self.signal_hooks:
                    hook(candle.instrument, candle.interval, signal.state, before, signal.time)
            await self.bus.publish(
                f"signals:{candle.instrument}",
                _dumps({**_payloads.signal_body(state), "changed": changed}),
                candle.open_time,
            )
        if candle.interval == self.interval:
            buffer = await self.ensure_series(candle.instrument)
            # A series loaded just now may already hold this candle (the writer flushed it).
            if buffer.add(candle) or buffer.last_time == candle.open_time:
                self._dirty.set()

    async def _recompute_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Candles of one bucket close together: let the rest of them arrive first.
            await asyncio.sleep(self.settings.analytics_debounce_s)
            self._dirty.clear()
            try:
                await self.recompute()
            except Exception:
                log.exception("grades/sectors recomputation failed; will retry on next close")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_S)
            try:
                await self._flush()
            except Exception:
                log.exception("writing signal history failed; will retry")

    async def _flush(self) -> None:
        rows, self._pending = self._pending, []
        try:
            await self.store.upsert_signals(rows)
        except Exception:
            self._pending[:0] = rows
            raise

    # --- grades and sectors -----------------------------------------------------------

    async def recompute(self, *, backfill: bool = False) -> None:
        """Recompute grades and sectors at the newest open time of the universe, publish
        them and the events they cause, and store their history."""
        # A pair just seen live must not displace one with history: prefer enough candles
        # for the trader grade (half its window).
        enough = math.ceil(0.5 * self.grade_params.trader_window_ms / self.interval_ms)
        chosen = choose_instruments(self.series, self.quotes, enough)
        if not chosen:
            return
        universe = {symbol: self.series[name].snapshot() for symbol, name in chosen.items()}
        # The newest time of the series that can be graded: a feed that started minutes ago
        # must not move `as_of` past the imported history everything else is graded on.
        ready = [s for s in universe.values() if len(s) >= enough] or list(universe.values())
        as_of = max(s.times[-1] for s in ready)
        times = [as_of]
        if backfill:  # hourly points for the last day, so the 24 h change exists at once
            times += [as_of - h * HOUR_MS for h in range(1, 25)]
        onchain = await self._onchain_activity(as_of)
        result = await asyncio.to_thread(
            compute,
            universe,
            self.registry,
            as_of,
            times,
            self.grade_params,
            self.sector_params,
            onchain,
        )
        await self._store_grades(result, chosen)
        before = await self._grades_before(result, chosen)
        previous = self.state
        scales = await self._store_sectors(result)
        self.state = AnalyticsState(
            as_of, chosen, result.grades[as_of], before, result.sectors, scales
        )
        if not backfill:
            await self._publish_events(previous, self.state)
            for hook in self.state_hooks:
                hook(previous, self.state)
        await self._publish_state(self.state)

    async def _onchain_activity(self, as_of: int) -> dict[str, dict[int, float]]:
        """Tracked tokens' daily on-chain activity; none when no chain is configured or
        the on-chain tables cannot be read (grades then go without the factor)."""
        if self.onchain is None:
            return {}
        try:
            return await self.onchain.read(as_of)
        except Exception:
            log.exception("reading on-chain activity failed; investor grades without it")
            return {}

    async def _store_grades(self, result: Computed, chosen: dict[str, str]) -> None:
        rows = [
            GradeRow(g.symbol, t, chosen[g.symbol], g.trader, g.investor)
            for t, grades in result.grades.items()
            for g in grades.values()
            if g.trader is not None or g.investor is not None
        ]
        await self.store.upsert_grades(rows)

    async def _grades_before(self, result: Computed, chosen: dict[str, str]) -> dict[str, Grade]:
        """Each symbol's stored grade 24 h before `as_of` (within an hour's tolerance)."""
        target = result.as_of - DAY_MS
        out = {}
        for symbol in chosen:
            rows = await self.store.get_grades(symbol, end=target, limit=1, descending=True)
            if rows and rows[0].time >= target - HOUR_MS:
                row = rows[0]
                out[symbol] = Grade(symbol, row.time, row.trader, row.investor)
        return out

    async def _store_sectors(self, result: Computed) -> dict[str, tuple[float, float]]:
        """Chain the fresh index levels to the stored ones and write the new points."""
        scales: dict[str, tuple[float, float]] = {}
        rows: list[SectorRow] = []
        anchors = dict(self._anchors)
        for sector_id, snap in result.sectors.items():
            index = snap.index
            if not index.times:
                continue
            anchor = self._anchors.get(sector_id)
            scale = (1.0, 1.0)
            if anchor is not None:
                at = index.value_at(anchor.time)
                if at is None:  # stored history ends before the loaded candles begin
                    at = (index.equal[0], index.cap[0] if index.cap is not None else None)
                eq = anchor.equal_index / at[0] if at[0] else 1.0
                cap = anchor.cap_index / at[1] if anchor.cap_index and at[1] else 1.0
                scale = (eq, cap)
            scales[sector_id] = scale
            after = anchor.time if anchor is not None else -1
            for i, t in enumerate(index.times):
                if t > after:
                    cap_level = index.cap[i] * scale[1] if index.cap is not None else None
                    rows.append(SectorRow(sector_id, t, index.equal[i] * scale[0], cap_level))
            if rows and rows[-1].sector == sector_id:
                anchors[sector_id] = rows[-1]
        await self.store.upsert_sectors(rows)
        self._anchors = anchors  # only once the rows are stored
        return scales

    async def _publish_events(self, previous: AnalyticsState, current: AnalyticsState) -> None:
        if current.as_of is None:
            return
        for change in band_changes(previous.grades, current.grades):
            body = _payloads.band_change_body(change, current.instruments[change.symbol])
            await self.bus.publish("grades", _dumps(body), current.as_of)
        threshold = self.sector_params.breakdown_threshold
        for sector_id, snap in current.sectors.items():
            old = previous.sectors.get(sector_id)
            was = set(old.breakdowns) if old is not None else set()
            for symbol in snap.breakdowns:
                if symbol in was:
                    continue
                body = {
                    "event": "correlation_breakdown",
                    "sector": sector_id,
                    "symbol": symbol,
                    "instrument": current.instruments.get(symbol),
                    "correlation": snap.member_correlation.get(symbol),
                    "threshold": threshold,
                    "time": current.as_of,
                }
                await self.bus.publish("sectors", _dumps(body), current.as_of)

    async def _publish_state(self, state: AnalyticsState) -> None:
        if state.as_of is None:
            return
        grades = [
            _payloads.grade_body(g, state.instruments[s], state.grades_24h.get(s))
            for s, g in sorted(state.grades.items())
        ]
        await self.bus.publish(
            "grades", _dumps({"event": "grades", "time": state.as_of, "data": grades}), state.as_of
        )
        sectors = [
            _payloads.sector_body(
                snap, self.registry.sectors[sid], state.scales.get(sid, (1.0, 1.0))
            )
            for sid, snap in sorted(state.sectors.items())
        ]
        await self.bus.publish(
            "sectors",
            _dumps({"event": "sectors", "time": state.as_of, "data": sectors}),
            state.as_of,
        )
