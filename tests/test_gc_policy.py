"""The serving process's GC policy (processes/_gc.py), on this test process's own collector."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from cryptopulse.processes._gc import (
    GC_FULL_INTERVAL,
    GC_PAUSE,
    GC_RECLAIMED,
    NEVER,
    WORTH,
    GcPolicy,
)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


def sample(metric: Any, suffix: str) -> float:
    """The value of `metric`'s sample named ..`suffix` (a histogram's count, a counter)."""
    return sum(s.value for m in metric.collect() for s in m.samples if s.name.endswith(suffix))


def pauses() -> float:
    return sample(GC_PAUSE, "_count")


@pytest.fixture
def policy() -> Iterator[GcPolicy]:
    made = GcPolicy(tick_s=1.0, full_s=3_600.0)
    try:
        yield made
    finally:
        made.stop()
        gc.collect()


def test_start_freezes_the_heap_and_stop_hands_it_back(policy: GcPolicy) -> None:
    before, thresholds = pauses(), gc.get_threshold()
    kept = Node()
    policy.start()
    assert gc.get_freeze_count() > 1_000
    assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
    assert pauses() == before + 1  # the startup collection was timed
    # Generation 2 is the policy's: Python's own collections stop at generation 1.
    assert gc.get_threshold() == (*thresholds[:2], NEVER)
    policy.stop()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())
    assert gc.get_threshold() == thresholds


def test_the_full_step_reclaims_runtime_cycles_and_leaves_the_startup_heap_frozen(
    policy: GcPolicy,
) -> None:
    startup = Node()
    policy.start()
    frozen = gc.get_freeze_count()
    head, alive = cycle()
    gc.collect(1)  # what survives young collections goes to generation 2...
    assert any(o is head for o in gc.get_objects(generation=2))
    del head  # ...where the cycle is garbage now, and young collections never see it
    gc.collect(1)
    assert alive() is not None
    policy.tick()  # within full_s: nothing
    assert policy.full_collections == 1 and alive() is not None
    policy.interval = 0.0  # the next tick is the periodic full collection
    reclaimed = sample(GC_RECLAIMED, "_total")
    policy.tick()
    assert policy.full_collections == 2
    assert alive() is None
    assert sample(GC_RECLAIMED, "_total") >= reclaimed + 2  # the cycle's two nodes, counted
    # It walked the runtime heap only: the startup heap stayed frozen.
    assert gc.get_freeze_count() == frozen
    assert not any(o is startup for o in gc.get_objects())


def test_frozen_objects_still_die_by_reference_counting(policy: GcPolicy) -> None:
    node = Node()
    ref = weakref.ref(node)
    policy.start()
    del node
    assert ref() is None


def full_collection_due(policy: GcPolicy) -> None:
    """Make the next tick the periodic full collection (its interval has passed)."""
    policy._last_full = time.monotonic() - policy.interval


def test_little_to_reclaim_doubles_the_interval_up_to_the_max() -> None:
    policy = GcPolicy(tick_s=1.0, full_s=10.0, full_max_s=35.0)
    try:
        policy.start()
        assert policy.interval == 10.0 and sample(GC_FULL_INTERVAL, "seconds") == 10.0
        heap = [Node() for _ in range(1_000)]  # a runtime heap, what the full step walks
        intervals = []
        for _ in range(3):
            head, alive = cycle()  # a little garbage: far under WORTH of the heap
            gc.collect(1)
            del head
            full_collection_due(policy)
            policy.tick()
            assert alive() is None  # reclaimed all the same
            intervals.append(policy.interval)
        assert intervals == [20.0, 35.0, 35.0]
        assert sample(GC_FULL_INTERVAL, "seconds") == 35.0
        assert len(heap) == 1_000
    finally:
        policy.stop()


def test_much_to_reclaim_brings_the_interval_back() -> None:
    policy = GcPolicy(tick_s=1.0, full_s=10.0, full_max_s=3_600.0)
    try:
        policy.start()
        full_collection_due(policy)
        policy.tick()
        assert policy.interval == 20.0
        # Cycles worth more than WORTH of the runtime heap, in generation 2, then garbage.
        count = int(len(gc.get_objects(generation=2)) * WORTH) + 1_000
        garbage = [cycle() for _ in range(count)]
        gc.collect(1)
        alive = garbage[-1][1]
        del garbage
        gc.collect(1)
        assert alive() is not None  # in generation 2: only the full collection reclaims them
        reclaimed = sample(GC_RECLAIMED, "_total")
        full_collection_due(policy)
        policy.tick()
        assert alive() is None and sample(GC_RECLAIMED, "_total") >= reclaimed + 2 * count
        assert policy.interval == 10.0 and sample(GC_FULL_INTERVAL, "seconds") == 10.0
    finally:
        policy.stop()
