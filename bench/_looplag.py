"""How long a benchmark server's event loop keeps a ready task waiting: a heartbeat.

A task on the loop asks to wake every millisecond and counts the wake-ups that came
`LATE_MS` or more late: anything else that became ready then (a request's bytes, a frame
to send) waited that long for the loop, behind one long callback or a run of short ones.

Measured on the loop itself, not by a sampling thread: a thread can only look at the main
thread's stack when the main thread releases the GIL (a zlib call, `os.urandom`, a wait
for I/O), so its samples pile up at those calls whatever the loop spends its time on (a
first version of this module sampled stacks that way and blamed `os.urandom`).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["LATE_MS", "LoopLag"]

LATE_MS = 10.0  # a wake-up this late or later is counted


class LoopLag:
    def __init__(self) -> None:
        self.late = 0  # wake-ups at least LATE_MS late so far

    async def heartbeat(self) -> None:
        """Wake every millisecond until cancelled, counting late wake-ups."""
        clock = time.perf_counter
        while True:
            due = clock() + 0.001
            await asyncio.sleep(0.001)
            if (clock() - due) * 1000 >= LATE_MS:
                self.late += 1
