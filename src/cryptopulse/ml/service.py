"""The prediction service: registered models, live features, batched inference.

Models come from the registry (store/ml.py) and are reloaded when a new version appears
(checked every `ml_reload_s`), so `cryptopulse train` in another process needs no restart.
Features live in memory per (instrument, interval): warmed from stored candles on first
use, advanced by the pipeline's closed-candle hook, topped up from the store when a
series has no live feed (an API-only replica, imported history). Each model has its own
micro-batcher; on each closed candle the applicable models predict and the result is
published on `predictions:<instrument>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import orjson

from cryptopulse.bus.base import Bus
from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.domain.models import Candle
from cryptopulse.ml.batcher import MicroBatcher
from cryptopulse.ml.features import FeatureState
from cryptopulse.ml.models import OnnxModel
from cryptopulse.settings import Settings
from cryptopulse.store.analytics import AnalyticsStore
from cryptopulse.store.ml import MLStore, ModelInfo
from cryptopulse.store.sql import SQLStore

__all__ = ["LoadedModel", "NoPrediction", "Prediction", "PredictionService"]

log = logging.getLogger(__name__)

_QUEUE = 100_000  # closed candles waiting for the live consumer; past this they are dropped
_REFRESH_MAX_MS = 60_000  # a series without a live feed re-reads the store at most this often
DEFAULT_MODEL = "baseline"


class NoPrediction(LookupError):
    """No model, or not enough closed candles, for the instrument (a 404)."""


@dataclass(slots=True)
class LoadedModel:
    info: ModelInfo
    model: OnnxModel
    batcher: MicroBatcher


@dataclass(frozen=True, slots=True)
class Prediction:
    instrument: str
    interval: str
    time: int  # open time of the latest closed candle the features include
    probability_up: float
    model: ModelInfo

    def body(self) -> dict[str, object]:
        """The JSON shape of `PredictionOut` (api/ml_schemas.py)."""
        m = self.model
        step = INTERVALS[self.interval]
        return {
            "instrument": self.instrument,
            "interval": self.interval,
            "time": self.time,
            "horizon": m.horizon,
            # The prediction is about the close of the candle `horizon` candles later.
            "target_time": self.time + m.horizon * step,
            "probability_up": self.probability_up,
            "model": {"id": m.id, "name": m.name, "version": m.version, "kind": m.kind},
        }


@dataclass(slots=True)
class _Series:
    state: FeatureState
    refresh_at: float = 0.0  # monotonic ms


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class PredictionService:
    """See the module docstring. `start` loads the models; `stop` releases everything."""

    def __init__(self, settings: Settings, store: SQLStore, bus: Bus) -> None:
        self.settings = settings
        self.registry = MLStore(store)
        self.candles = AnalyticsStore(store)
        self.bus = bus
        self.models: dict[int, LoadedModel] = {}
        self.series: dict[tuple[str, str], _Series] = {}
        self.dropped = 0
        self.published = 0
        self._latest_id = 0
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="ml")
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._queue: asyncio.Queue[Candle] = asyncio.Queue(_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []

    # --- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("loading prediction models failed; will retry")
        self._tasks.append(asyncio.create_task(self._reload_loop(), name="ml-reload"))
        self._tasks.append(asyncio.create_task(self._live_loop(), name="ml-live"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for loaded in self.models.values():
            await loaded.batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def reload(self) -> bool:
        """Load new model versions from the registry; True if anything changed."""
        latest = await self.registry.latest_id()
        if latest == self._latest_id:
            return False
        current = await self.registry.current()
        fresh = [m for m in current if m.id not in self.models]
        blobs = await self.registry.get_many([m.id for m in fresh])
        loaded = dict(self.models)
        for info in fresh:
            try:
                model = await asyncio.to_thread(
                    OnnxModel, blobs[info.id], info.features, self.settings.ml_threads
                )
            except Exception as exc:
                log.error("model %s v%d not loaded: %s", info.name, info.version, exc)
                continue
            loaded[info.id] = LoadedModel(info, model, self._batcher(model))
        keep = {m.id for m in current}
        for model_id in [i for i in loaded if i not in keep]:
            await loaded.pop(model_id).batcher.close()
        self.models = loaded
        self._latest_id = latest
        return True

    def _batcher(self, model: OnnxModel) -> MicroBatcher:
        s = self.settings
        return MicroBatcher(
            model.predict,
            max_batch=s.ml_batch_size,
            max_wait_s=s.ml_batch_wait_ms / 1000.0,
            max_queue=s.ml_queue_size,
            executor=self._executor,
        )

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ml_reload_s)
            try:
                await self.reload()
            except Exception:
                log.exception("checking the model registry failed; will retry")

    # --- choosing a model and features ---------------------------------------------

    def choose(self, instrument: str, interval: str, name: str | None = None) -> LoadedModel:
        """The model for a series: one registered for this instrument before one for any
        instrument; the newest version of `name` (default: the built-in baseline)."""
        wanted = name or DEFAULT_MODEL
        best: LoadedModel | None = None
        for loaded in self.models.values():
            info = loaded.info
            if info.name != wanted or info.interval != interval:
                continue
            if info.instrument not in (None, instrument):
                continue
            if best is None or (info.instrument is not None, info.id) > (
                best.info.instrument is not None,
                best.info.id,
            ):
                best = loaded
        if best is None:
            raise NoPrediction(
                f"no model {wanted!r} for {instrument} at {interval}; "
                "train one with `cryptopulse train` (see /v1/models)"
            )
        return best

    async def features(self, instrument: str, interval: str) -> tuple[int, list[float]]:
        """(open time, feature row) after the newest closed candle of a series."""
        key = (instrument, interval)
        series = self.series.get(key)
        if series is None or _now_ms() >= series.refresh_at:
            series = await self._load(key)
        state = series.state
        if state.values is None or state.last_time is None:
            raise NoPrediction(f"not enough closed {interval} candles of {instrument} yet")
        return state.last_time, state.values

    async def _load(self, key: tuple[str, str]) -> _Series:
        """Warm a series from the store, or add the candles stored since its last one."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            series = self.series.get(key)
            if series is not None and _now_ms() < series.refresh_at:
                return series  # refreshed while this caller waited for the lock
            instrument, interval = key
            after = series.state.last_time if series is not None else None
            candles = await self.candles.candles_between(
                instrument,
                interval,
                after + 1 if after is not None else None,
                None,
                self.settings.analytics_warmup_candles,
            )
            if series is None:
                series = _Series(FeatureState())
            for candle in candles:
                series.state.update(candle)
            series.refresh_at = _now_ms() + min(INTERVALS[interval], _REFRESH_MAX_MS)
            self.series[key] = series
            return series

    # --- predicting -----------------------------------------------------------------

    async def predict(self, instrument: str, interval: str, name: str | None = None) -> Prediction:
        """The current prediction for a series (raises NoPrediction, Overloaded,
        BatchFailed)."""
        loaded = self.choose(instrument, interval, name)
        at, row = await self.features(instrument, interval)
        value = await loaded.batcher.submit(np.asarray(row, dtype=np.float32))
        return Prediction(instrument, interval, at, value, loaded.info)

    # --- live closes ----------------------------------------------------------------

    async def on_closed_candle(self, candle: Candle) -> None:
        """Pipeline hook: never blocks; a full queue drops the candle and counts it."""
        try:
            self._queue.put_nowait(candle)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _live_loop(self) -> None:
        while True:
            candle = await self._queue.get()
            try:
                await self.apply(candle)
            except Exception:
                log.exception("prediction failed on %s %s", candle.instrument, candle.interval)

    async def apply(self, candle: Candle) -> None:
        """Advance the features of a closed candle's series; publish every model's view."""
        key = (candle.instrument, candle.interval)
        targets = [
            m
            for m in self.models.values()
            if m.info.interval == candle.interval and m.info.instrument in (None, key[0])
        ]
        series = self.series.get(key)
        if series is None:
            if not targets:
                return  # nothing to publish: do not warm series nobody predicts
            series = await self._load(key)
        series.state.update(candle)
        row = series.state.values
        if row is None or series.state.last_time != candle.open_time:
            return
        x = np.asarray(row, dtype=np.float32)
        # One model per name: the one a request for this series would get.
        for name in sorted({m.info.name for m in targets}):
            loaded = self.choose(key[0], key[1], name)
            value = await loaded.batcher.submit(x)
            body = Prediction(key[0], key[1], candle.open_time, value, loaded.info).body()
            await self.bus.publish(f"predictions:{key[0]}", orjson.dumps(body), candle.open_time)
            self.published += 1
