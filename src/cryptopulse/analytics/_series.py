"""Bounded in-memory candle series per instrument, and the choice of instrument per symbol."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence

from cryptopulse.domain.correlation import Series
from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Candle

# Quote volume summed over this many newest candles ranks otherwise equal candidates.
_LIQUIDITY_CANDLES = 288


class SeriesBuffer:
    """Closed candles of one instrument (open time, close, quote volume), oldest first,
    at most `limit`; trimming happens in chunks so appends stay amortized O(1).

    The columns are C arrays: 8 bytes a value where a list holds a pointer to a 24-byte
    number object (the default 9,000 candles of 1,400 instruments: ~0.3 GB instead of
    1.65), and the garbage collector does not walk them, where it would visit every slot
    of a list in every full collection (docs/benchmarks.md, stop 20).
    """

    __slots__ = ("closes", "limit", "times", "volumes")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: array[int] = array("q")
        self.closes: array[float] = array("d")
        self.volumes: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def last_time(self) -> int | None:
        return self.times[-1] if self.times else None

    def add(self, candle: Candle) -> bool:
        """Append a closed candle newer than the last one; False if it is not newer."""
        if self.times and candle.open_time <= self.times[-1]:
            return False
        self.times.append(candle.open_time)
        self.closes.append(candle.close)
        self.volumes.append(candle.quote_volume)
        excess = len(self.times) - self.limit
        if excess > max(64, self.limit // 8):
            del self.times[:excess], self.closes[:excess], self.volumes[:excess]
        return True

    def extend(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self.add(candle)

    def snapshot(self) -> Series:
        """A copy of the newest `limit` candles that nothing else holds (safe to hand to a
        worker thread): array slices, one memory copy each, no number object made."""
        start = max(0, len(self.times) - self.limit)
        return Series(self.times[start:], self.closes[start:], self.volumes[start:])

    def liquidity(self) -> float:
        return sum(self.volumes[-_LIQUIDITY_CANDLES:])


def choose_instruments(
    buffers: Mapping[str, SeriesBuffer], quotes: Sequence[str], min_candles: int = 0
) -> dict[str, str]:
    """symbol -> the instrument its analytics use (docs/grades.md, "Which candles"):

    0. one with at least `min_candles` candles before one with fewer,
    1. the quote earliest in `quotes` (others after them, alphabetically),
    2. a composite (all venues) before a single venue,
    3. the larger quote volume over the last 288 candles,
    4. the name, so the choice is stable.
    """
    rank = {q: i for i, q in enumerate(quotes)}
    best: dict[str, tuple[tuple[int, int, str, int, float, str], str]] = {}
    for name, buffer in buffers.items():
        if not len(buffer):
            continue
        inst = parse_instrument(name)
        key = (
            0 if len(buffer) >= min_candles else 1,
            rank.get(inst.quote, len(rank)),
            inst.quote,
            0 if inst.is_composite else 1,
            -buffer.liquidity(),
            name,
        )
        current = best.get(inst.base)
        if current is None or key < current[0]:
            best[inst.base] = (key, name)
    return {symbol: name for symbol, (_, name) in sorted(best.items())}
