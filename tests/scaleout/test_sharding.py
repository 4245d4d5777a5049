"""Shards split instruments by pair, and a sharded source feeds each pair to one shard."""

from __future__ import annotations

import pytest

from cryptopulse.processes.ingest import ShardedSource
from cryptopulse.settings import DEFAULT_INSTRUMENTS
from cryptopulse.sharding import Shard, parse_shard
from cryptopulse.sources.replay import ReplaySource
from fakes import CAPTURES, RecordingSink


def test_parse_shard() -> None:
    assert parse_shard("1/3") == Shard(1, 3)
    assert str(parse_shard(" 0/1 ")) == "0/1"
    for bad in ("3/3", "1", "a/2", "-1/2", "0/0", "1/2/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_every_instrument_has_exactly_one_shard_and_pairs_stay_together() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    owners = {name: [s.index for s in shards if s.owns(name)] for name in DEFAULT_INSTRUMENTS}
    assert all(len(found) == 1 for found in owners.values())
    # every venue quoting BTC-USD, and the composite, land in the same shard
    btc = {owners[n][0] for n in ("coinbase:BTC-USD", "kraken:BTC-USD")}
    assert btc == {next(s.index for s in shards if s.owns("BTC-USD"))}
    assert sum(len(s.select(DEFAULT_INSTRUMENTS)) for s in shards) == len(DEFAULT_INSTRUMENTS)
    assert all(s.select(DEFAULT_INSTRUMENTS) for s in shards)  # not all in one shard


async def test_a_replayed_capture_is_split_between_shards_without_overlap() -> None:
    capture = CAPTURES / "COINBASE.ws.28.0"
    everything = RecordingSink()
    await ReplaySource([capture]).run(everything)
    parts = []
    for index in range(2):
        sink = RecordingSink()
        await ShardedSource(ReplaySource([capture]), Shard(index, 2)).run(sink)
        parts.append(sink)
    names = [{e.instrument for e in (*part.trades, *part.tickers)} for part in parts]
    assert names[0] and names[1] and not names[0] & names[1]
    for kind in ("trades", "tickers"):
        split = sum(len(getattr(part, kind)) for part in parts)
        assert split == len(getattr(everything, kind)) > 0
