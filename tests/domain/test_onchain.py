"""Pure on-chain metrics: fees, per-block metrics, sketches, reorg-safe rollups, growth."""

from __future__ import annotations

import math
import random

import pytest

from cryptopulse.domain._onchain_rollup import OnchainAccumulator
from cryptopulse.domain.onchain import (
    HOUR_MS,
    AddressSketch,
    Block,
    TokenTransfer,
    TrackedToken,
    Tx,
    activity_growth,
    block_metrics,
    priority_fee_per_gas,
)

T0 = 1_800_000_000_000
TOKEN = "0x" + "ab" * 20
GWEI = 10**9


def addr(i: int) -> str:
    return "0x" + f"{i:040x}"


def make_tx(sender: int, to: int | None, tip: int = GWEI, max_fee: int = 50 * GWEI) -> Tx:
    return Tx(
        f"0x{sender:x}{to}",
        addr(sender),
        addr(to) if to is not None else None,
        0,
        None,
        max_fee,
        tip,
    )


def make_block(
    number: int, time: int, txs: tuple[Tx, ...] = (), moves: int = 0, fork: str = ""
) -> Block:
    transfers = tuple(
        TokenTransfer(TOKEN, addr(number * 10 + i), addr(999), 10**18, number, i, "0x1")
        for i in range(moves)
    )
    return Block(
        "c",
        number,
        f"0x{fork}{number}",
        f"0x{fork}{number - 1}",
        time,
        100,
        1_000,
        GWEI,
        txs,
        transfers,
    )


@pytest.mark.parametrize(
    ("tx", "base", "expected"),
    [
        (Tx("h", "a", "b", 0, None, 10 * GWEI, 2 * GWEI), 5 * GWEI, 2 * GWEI),  # tip fits
        (Tx("h", "a", "b", 0, None, 6 * GWEI, 2 * GWEI), 5 * GWEI, GWEI),  # capped by max fee
        (Tx("h", "a", "b", 0, 7 * GWEI, None, None), 5 * GWEI, 2 * GWEI),  # legacy
        (Tx("h", "a", "b", 0, 4 * GWEI, None, None), 5 * GWEI, 0),  # never negative
        (Tx("h", "a", "b", 0, 3 * GWEI, None, None), None, 3 * GWEI),  # before London
    ],
)
def test_priority_fee_per_gas(tx: Tx, base: int | None, expected: int) -> None:
    assert priority_fee_per_gas(tx, base) == expected


def test_block_metrics_count_actors_deployments_and_tips() -> None:
    txs = (make_tx(1, 2, tip=GWEI), make_tx(1, None, tip=3 * GWEI), make_tx(3, 1, tip=2 * GWEI))
    m = block_metrics(make_block(5, T0, txs))
    assert (m.tx_count, m.active_addresses, m.deployments) == (3, 3, 1)
    assert m.utilisation == 0.1 and m.base_fee_gwei == 1.0
    assert m.priority_fee_gwei == 2.0 and m.priority_fee_median_gwei == 2.0


def test_sketch_merges_and_survives_serialization() -> None:
    one, two = AddressSketch(), AddressSketch()
    one.add_all(addr(i) for i in range(300))
    two.add_all(addr(i) for i in range(200, 500))
    restored = AddressSketch.from_bytes(one.to_bytes())
    restored.merge(two)
    assert one.estimate() == 300  # exact while small
    assert restored.estimate() == pytest.approx(500, rel=0.02)  # HLL mode by now
    big = AddressSketch()
    big.add_all(addr(i) for i in range(50_000))
    assert big.estimate() == pytest.approx(50_000, rel=0.05)


def _run(blocks: list[Block], window: int) -> OnchainAccumulator:
    acc = OnchainAccumulator("c", {TOKEN: TrackedToken(TOKEN, "TST", 18, 2.0)}, {}, window)
    for block in blocks:
        acc.add(block)
    return acc


def _state(acc: OnchainAccumulator) -> dict[tuple[str, str, int], tuple[object, ...]]:
    out = {}
    for key in list(acc._live):  # the live buckets, as rollups
        rollups, tokens = acc._outputs([key])
        for r in [*rollups, *tokens]:
            values = tuple(v for k, v in vars_of(r).items() if "sketch" not in k)
            out[key] = values
    return out


def vars_of(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(5))
def test_rollback_gives_the_rollups_of_a_chain_that_never_saw_the_orphans(seed: int) -> None:
    rng = random.Random(seed)
    times = [T0 + i * rng.choice((400_000, 900_000)) for i in range(1, 13)]

    def block(n: int, fork: str) -> Block:
        txs = tuple(make_tx(rng.randrange(20), rng.randrange(20)) for _ in range(rng.randrange(4)))
        return make_block(n, times[n - 1], txs, rng.randrange(3), fork)

    main = [block(n, "") for n in range(1, 11)]
    fork_at = rng.randrange(4, 9)
    branch = [block(n, "f") for n in range(fork_at + 1, 13)]
    acc = _run(main, window=8)
    update = acc.rollback(fork_at, main[fork_at - 1].hash)
    assert update.exact and update.removed == list(range(fork_at + 1, 11))
    for b in branch:
        acc.add(b)
    fresh = _run(main[:fork_at] + branch, window=8)
    assert _state(acc) == _state(fresh)


def test_a_rollback_deeper_than_the_window_is_reported_inexact() -> None:
    blocks = [make_block(n, T0 + n * 1000, (make_tx(n, n + 1),)) for n in range(1, 8)]
    acc = _run(blocks, window=3)
    update = acc.rollback(2, blocks[1].hash)
    assert not update.exact and update.removed == [5, 6, 7]
    assert acc.head == (2, blocks[1].hash)


def test_hour_and_day_buckets_align_to_utc_boundaries() -> None:
    acc = _run([], window=4)
    first = acc.add(make_block(1, T0 + 10, (make_tx(1, 2),), moves=1))
    second = acc.add(make_block(2, T0 + HOUR_MS + 10, (make_tx(1, 3),)))
    assert [(r.interval, r.open_time) for r in first.rollups] == [
        ("1h", T0),
        ("1d", T0 - T0 % 86_400_000),
    ]
    hour, day = second.rollups
    assert (hour.open_time, hour.blocks, hour.active_addresses) == (T0 + HOUR_MS, 1, 2)
    assert (day.blocks, day.active_addresses) == (2, 3)
    assert first.whales == [] and first.tokens[0].volume == 1.0  # threshold 2 TST


def test_activity_growth_is_a_log_ratio_of_weekly_means() -> None:
    assert activity_growth([10.0] * 7 + [20.0] * 7) == pytest.approx(math.log(2))
    assert activity_growth([None] * 7 + [20.0] * 7) is None  # no earlier data
    assert activity_growth([10.0] * 10) is None  # not two windows yet
    assert activity_growth([5.0, None, None, None, 5.0, 5.0, 5.0] + [5.0] * 7) == 0.0
