"""The garbage-collection policy of a serving process: the startup heap frozen, the rest
collected rarely.

CPython's full (generation 2) collection walks every tracked object the process holds and
stops the event loop meanwhile. A serving process holds a large, long-lived heap: the
modules and the app (~270,000 objects), then per instrument its candle, indicator and bus
state, per open stream its connection. With 1,400 instruments and 2,000 streams the full
collections, which the collector runs every few seconds under load, took 0.2–0.6 s each:
every frame and request in flight waited that long (docs/benchmarks.md, "Mixed").

`gc.freeze()` moves every tracked object to a permanent generation that collections skip,
in O(1); `gc.unfreeze()` hands all of it back (there is no partial unfreeze). The policy:

- after startup, one full collection, then `freeze()`: the startup heap (the modules, the
  app, the services as built: ~170,000–270,000 objects) is out of every collection for
  good, the periodic full one included;
- automatic generation-2 collections off (`gc.set_threshold(t0, t1, NEVER)`): what
  survives generations 0 and 1 collects in generation 2, which nothing walks but
- every `full_s`, one full collection (`gc.collect()`): the cycles that became garbage
  among what was allocated since startup are reclaimed; the startup heap stays frozen,
  so the pause is the runtime heap's alone (per instrument its candle, indicator and bus
  state, per open stream its connection). This is the one long pause left, once per
  `full_s` instead of every few seconds;
- and when such a collection finds little to reclaim (at most `WORTH` of the objects it
  walked), the next one waits twice as long, up to `full_max_s`; one that finds more
  brings the interval back to `full_s`. A serving process makes few such cycles (a
  census found ~1,100 unreachable objects of ~620,000 after a minute of 2,000 stream
  connections coming in), so its pauses become rare, while a process that does make
  them keeps collecting every `full_s`: what waits for a collection stays about `WORTH`
  of the heap's objects, whatever the interval.

What this gives up: a startup object that later becomes garbage inside a reference cycle
is never reclaimed (a leak bounded by the startup heap, which does not grow). Until stop
19 the policy froze every survivor each `gc_freeze_s` and unfroze everything for the full
collection, whose pause then walked the startup heap too (docs/decisions.md, "The startup
heap stays frozen").

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

__all__ = ["GC_FROZEN", "GC_FULL_INTERVAL", "GC_PAUSE", "GC_RECLAIMED", "GcPolicy", "WORTH"]

log = logging.getLogger(__name__)

GC_PAUSE = Histogram(
    "cryptopulse_gc_pause_seconds",
    "Full (generation 2) garbage collections: how long each stopped the process",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FROZEN = Gauge(
    "cryptopulse_gc_frozen_objects",
    "Objects frozen (gc.freeze) at startup: the startup heap, which no collection walks",
    registry=REGISTRY,
)

GC_RECLAIMED = Counter(
    "cryptopulse_gc_reclaimed_objects",
    "Unreachable objects (reference cycles) the policy's full collections reclaimed: what "
    "CRYPTOPULSE_GC_FULL_S buys; near zero, the interval can be longer",
    registry=REGISTRY,
)


GC_FULL_INTERVAL = Gauge(
    "cryptopulse_gc_full_interval_seconds",
    "How long the GC policy waits before its next full collection (CRYPTOPULSE_GC_FULL_S, "
    "doubled after each that reclaimed little, up to CRYPTOPULSE_GC_FULL_MAX_S)",
    registry=REGISTRY,
)

# A periodic full collection that reclaims at most this share of the objects it walked
# was not worth its pause yet: the next one waits twice as long.
WORTH = 0.01
# Generation 2's threshold while the policy runs: never reached (one generation-1
# collection per ~7,000 net allocations would take years), so only the policy collects it.
NEVER = 2**30


class GcPolicy:
    def __init__(self, tick_s: float, full_s: float, full_max_s: float | None = None) -> None:
        self.tick_s = tick_s  # how often `run` looks at the clock (the `gc_freeze_s` setting)
        self.full_s = full_s
        self.full_max_s = max(full_s, full_max_s if full_max_s is not None else full_s)
        self.interval = full_s  # until the next full collection
        self._started = 0.0
        self._last_full = 0.0
        self._thresholds: tuple[int, int, int] | None = None  # Python's, while ours apply
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
        """Collect once, freeze the startup heap, leave generation 2 to `tick` (call when
        the process is ready to serve)."""
        if self._timer not in gc.callbacks:
            gc.callbacks.append(self._timer)
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
        gc.unfreeze()
        GC_RECLAIMED.inc(gc.collect())
        gc.freeze()
        frozen = gc.get_freeze_count()  # walks the frozen list (~60 ms at 600,000): once
        GC_FROZEN.set(frozen)
        t0, t1, _ = self._thresholds
        gc.set_threshold(t0, t1, NEVER)
        self._last_full = time.monotonic()
        self.full_collections += 1
        GC_FULL_INTERVAL.set(self.interval)

    def stop(self) -> None:
        """Hand everything back to the collector and its thresholds (shutdown: let it
        reclaim cycles)."""
        if self._timer in gc.callbacks:
            gc.callbacks.remove(self._timer)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
        gc.unfreeze()
        GC_FROZEN.set(0)

    def _collect(self) -> tuple[int, int]:
        """One full collection of what is not frozen: (unreachable objects it found,
        objects it left in generation 2)."""
        started = time.perf_counter()
        unreachable = gc.collect()
        ms = (time.perf_counter() - started) * 1000
        GC_RECLAIMED.inc(unreachable)
        self._last_full = time.monotonic()
        self.full_collections += 1
        kept = len(gc.get_objects(generation=2))  # a list of them: ~10 ms at 230,000, once
        log.debug("full collection: %d unreachable, %.0f ms; %d objects", unreachable, ms, kept)
        return unreachable, kept

    def tick(self) -> None:
        """One step of the policy: collect everything not frozen when `interval` has
        passed, then set the next interval by what the collection reclaimed."""
        if time.monotonic() - self._last_full < self.interval:
            return
        unreachable, kept = self._collect()
        if unreachable <= WORTH * (kept + unreachable):
            self.interval = min(self.interval * 2, self.full_max_s)
        else:
            self.interval = self.full_s
        GC_FULL_INTERVAL.set(self.interval)

    async def run(self) -> None:
        """`start`, then `tick` every `tick_s` until cancelled; `stop` on the way out."""
        self.start()
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                self.tick()
        finally:
            self.stop()
