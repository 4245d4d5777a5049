"""The garbage-collection policy of a serving process: freeze what survives, collect rarely.

CPython's full (generation 2) collection walks every tracked object the process holds and
stops the event loop meanwhile. A serving process holds a large, long-lived heap: the
modules and the app (~270,000 objects), then per instrument its candle, indicator and bus
state, per open stream its connection. With 1,400 instruments and 2,000 streams the full
collections, which the collector runs every few seconds under load, took 0.2–0.6 s each:
every frame and request in flight waited that long (docs/benchmarks.md, "Mixed").

`gc.freeze()` moves every tracked object to a permanent generation that collections skip,
in O(1). The policy:

- after startup, one full collection, then `freeze()`: the import-time heap is out of
  every collection from then on;
- every `freeze_s`, `freeze()` again: what survived until then is out of the collector's
  sight, so a full collection only walks what was allocated since (a second's worth);
- every `full_s`, `unfreeze()`, one full collection, `freeze()`: objects die by reference
  counting even while frozen, but a *cycle* that became garbage after it was frozen is
  only reclaimed here. This is the one long pause left, once per `full_s` instead of
  every few seconds.

Generation 0 and 1 collections are unchanged. The pauses of generation-2 collections are
observed in `cryptopulse_gc_pause_seconds` (and Python's own `python_gc_*` metrics).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from cryptopulse.api.metrics import REGISTRY

__all__ = ["GC_FROZEN", "GC_PAUSE", "GC_RECLAIMED", "GcPolicy"]

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "cryptopulse_gc_pause_seconds",
    "Full (generation 2) garbage collections: how long each stopped the process",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FROZEN = Gauge(
    "cryptopulse_gc_frozen_objects",
    "Objects frozen (gc.freeze) by the last full collection, skipped by collections since",
    registry=REGISTRY,
)

GC_RECLAIMED = Counter(
    "cryptopulse_gc_reclaimed_objects",
    "Unreachable objects (reference cycles) the policy's full collections reclaimed: what "
    "CRYPTOPULSE_GC_FULL_S buys; near zero, the interval can be longer",
    registry=REGISTRY,
)


class GcPolicy:
    def __init__(self, freeze_s: float, full_s: float) -> None:
        self.freeze_s = freeze_s
        self.full_s = full_s
        self._started = 0.0
        self._last_full = 0.0
        self.full_collections = 0

    def _timer(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            GC_PAUSE.observe(time.perf_counter() - self._started)
            self._started = 0.0

    def start(self) -> None:
        """Collect once and freeze what is left (call when the process is ready to serve)."""
        if self._timer not in gc.callbacks:
            gc.callbacks.append(self._timer)
        self._collect_and_freeze()

    def stop(self) -> None:
        """Hand everything back to the collector (shutdown: let it reclaim cycles)."""
        if self._timer in gc.callbacks:
            gc.callbacks.remove(self._timer)
        gc.unfreeze()
        GC_FROZEN.set(0)

    def _collect_and_freeze(self) -> None:
        gc.unfreeze()
        started = time.perf_counter()
        unreachable = gc.collect()
        gc.freeze()
        GC_RECLAIMED.inc(unreachable)
        self._last_full = time.monotonic()
        self.full_collections += 1
        frozen = gc.get_freeze_count()  # walks the frozen list (~60 ms at 600,000): once
        GC_FROZEN.set(frozen)
        log.debug(
            "full collection: %d unreachable, %.0f ms; %d objects frozen",
            unreachable,
            (time.perf_counter() - started) * 1000,
            frozen,
        )

    def tick(self) -> None:
        """One step of the policy: freeze, or collect everything when `full_s` has passed."""
        if time.monotonic() - self._last_full >= self.full_s:
            self._collect_and_freeze()
        else:
            # O(1). (`gc.get_freeze_count()` is not: it walks the whole frozen list, ~60 ms
            # for ~600,000 objects, so the gauge is only refreshed by full collections.)
            gc.freeze()

    async def run(self) -> None:
        """`start`, then `tick` every `freeze_s` until cancelled; `stop` on the way out."""
        self.start()
        try:
            while True:
                await asyncio.sleep(self.freeze_s)
                self.tick()
        finally:
            self.stop()
