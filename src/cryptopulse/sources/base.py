"""The source protocol: a source yields normalized events into a sink and owns its connection."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptopulse.domain.models import Ticker, Trade

SourceKind = Literal["live", "simulated", "replay", "import"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class EventSink(Protocol):
    """Where sources put normalized events (the pipeline)."""

    async def on_trade(self, trade: Trade) -> None: ...

    async def on_ticker(self, ticker: Ticker) -> None: ...


@dataclass(slots=True)
class FeedStatus:
    """What /readyz and /metrics say about one feed."""

    name: str
    kind: SourceKind
    instruments: list[str]
    connected: bool = False
    last_message: int | None = None  # receipt time, ms
    messages: int = 0
    reconnects: int = 0
    gaps: int = 0
    backfilled: int = 0
    last_error: str | None = None
    extra: dict[str, int] = field(default_factory=dict)


class Source(Protocol):
    """A feed of Trade and Ticker events. `run` returns when the feed ends (replay) or is
    cancelled (live, simulator); a live source reconnects by itself and never raises for
    network errors."""

    name: str
    kind: SourceKind
    status: FeedStatus

    async def run(self, sink: EventSink) -> None: ...


@dataclass(slots=True)
class Backoff:
    """Jittered exponential backoff ("full jitter", as in the AWS architecture blog)."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        delay: float = self.rng.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
