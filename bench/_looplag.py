"""How long a benchmark process's event loop keeps a ready task waiting (a heartbeat), and
how long its full garbage collections take.

A task on the loop asks to wake every millisecond and counts the wake-ups that came
`LATE_MS` or more late: anything else that became ready then (a request's bytes, a frame
to send) waited that long for the loop, behind one long callback or a run of short ones.
Wake-ups `STALL_MS` or more late are also kept with their wall-clock time (`stalls`), so
that a report can say in which minute the loop stood still, and for how long.

Measured on the loop itself, not by a sampling thread: a thread can only look at the main
thread's stack when the main thread releases the GIL (a zlib call, `os.urandom`, a wait
for I/O), so its samples pile up at those calls whatever the loop spends its time on (a
first version of this module sampled stacks that way and blamed `os.urandom`).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Iterable

__all__ = ["LATE_MS", "STALL_MS", "FullCollections", "LoopLag", "longest_since"]

LATE_MS = 10.0  # a wake-up this late or later is counted
STALL_MS = 50.0  # a wake-up this late or later is kept, with its time


class LoopLag:
    def __init__(self) -> None:
        self.late = 0  # wake-ups at least LATE_MS late so far
        # (wall time of the wake-up, ms late) of the last wake-ups at least STALL_MS late
        self.stalls: deque[tuple[float, float]] = deque(maxlen=1000)

    async def heartbeat(self) -> None:
        """Wake every millisecond until cancelled, counting late wake-ups."""
        clock = time.perf_counter
        while True:
            due = clock() + 0.001
            await asyncio.sleep(0.001)
            late_ms = (clock() - due) * 1000
            if late_ms >= LATE_MS:
                self.late += 1
                if late_ms >= STALL_MS:
                    self.stalls.append((time.time(), late_ms))


class FullCollections:
    """Every full (generation 2) collection of this process, timed: the loop stands still
    meanwhile. `install` adds the callback to `gc.callbacks`."""

    def __init__(self) -> None:
        self.count = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.recent: deque[tuple[float, float]] = deque(maxlen=1000)  # (wall time at end, ms)
        self._started = 0.0

    def install(self) -> FullCollections:
        gc.callbacks.append(self._on_gc)
        return self

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._started) * 1000
        self.count += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)
        self.recent.append((time.time(), ms))


def longest_since(events: Iterable[Iterable[float]], since: float) -> float:
    """The largest ms of (wall time, ms) pairs at or after `since`; 0 when none."""
    return max((ms for t, ms in events if t >= since), default=0.0)
