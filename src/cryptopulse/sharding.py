"""Which ingest shard owns an instrument: a stable hash of its pair, modulo the shard count.

Shards split by *pair* (`BTC-USD`), not by venue instrument, so every venue quoting a pair
lands in the same process and the composite channels (`ticker:BTC-USD`,
`candles:BTC-USD:1m`) have exactly one publisher. The hash is CRC-32 of the pair, which is
the same in every process and Python version (the built-in `hash` is salted per process).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptopulse.domain.instruments import parse_instrument

__all__ = ["Shard", "parse_shard"]


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, instrument: str) -> bool:
        """True when this shard ingests `instrument` (venue or composite)."""
        if self.count == 1:
            return True
        pair = parse_instrument(instrument).pair
        return zlib.crc32(pair.encode()) % self.count == self.index

    def select(self, instruments: Iterable[str]) -> list[str]:
        """The instruments this shard owns, in their given order."""
        return [name for name in instruments if self.owns(name)]


def parse_shard(text: str) -> Shard:
    """`"i/n"` -> Shard(i, n); raises ValueError on anything else."""
    index, sep, count = text.strip().partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ValueError(f"shard must look like i/n (e.g. 0/2), not {text!r}")
    return Shard(int(index), int(count))
