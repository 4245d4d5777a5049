"""How long a benchmark server's event loop keeps a ready task waiting: a heartbeat.

A task on the loop asks to wake every millisecond and records how late it woke: that is
how long anything else that became ready then (a request's bytes, a frame to send) waited
for the loop, whether behind one long callback or a run of short ones.

Measured on the loop itself, not by a sampling thread: a thread can only look at the main
thread's stack when the main thread releases the GIL (a zlib call, `os.urandom`, a wait
for I/O), so its samples pile up at those calls whatever the loop spends its time on (a
first version of this module sampled stacks that way and blamed `os.urandom`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

__all__ = ["LoopLag"]

BOUNDS_MS = (5, 10, 25, 50, 100)


class LoopLag:
    def __init__(self) -> None:
        self.late: Counter[int] = Counter()  # bound (ms) -> wake-ups at least that late
        self.worst_ms = 0.0

    async def heartbeat(self) -> None:
        """Wake every millisecond until cancelled, counting late wake-ups."""
        clock = time.perf_counter
        while True:
            due = clock() + 0.001
            await asyncio.sleep(0.001)
            ms = (clock() - due) * 1000
            if ms >= BOUNDS_MS[0]:
                self.worst_ms = max(self.worst_ms, ms)
                for bound in BOUNDS_MS:
                    if ms >= bound:
                        self.late[bound] += 1

    def counts(self) -> dict[str, float]:
        """Late wake-ups so far per bound, ``{"5": n, "10": n, ...}``, and the worst."""
        return {str(b): float(self.late[b]) for b in BOUNDS_MS} | {"worst_ms": self.worst_ms}
