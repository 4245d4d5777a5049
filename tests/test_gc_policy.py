"""The serving process's GC policy (processes/_gc.py), on this test process's own collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from cryptopulse.processes._gc import GC_PAUSE, GC_RECLAIMED, GcPolicy


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
    made = GcPolicy(freeze_s=1.0, full_s=3_600.0)
    try:
        yield made
    finally:
        made.stop()
        gc.collect()


def test_start_freezes_the_heap_and_stop_hands_it_back(policy: GcPolicy) -> None:
    before = pauses()
    kept = Node()
    policy.start()
    assert gc.get_freeze_count() > 1_000
    assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
    assert pauses() == before + 1  # the startup collection was timed
    policy.stop()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())


def test_tick_freezes_survivors_and_the_full_step_reclaims_frozen_cycles(
    policy: GcPolicy,
) -> None:
    policy.start()
    head, alive = cycle()
    policy.tick()  # within full_s: only a freeze
    assert policy.full_collections == 1
    del head  # the cycle is garbage now, but frozen: ordinary collections never see it
    gc.collect()
    assert alive() is not None
    policy.full_s = 0.0  # the next tick is the periodic full collection
    reclaimed = sample(GC_RECLAIMED, "_total")
    policy.tick()
    assert policy.full_collections == 2
    assert alive() is None
    assert sample(GC_RECLAIMED, "_total") >= reclaimed + 2  # the cycle's two nodes, counted
    assert gc.get_freeze_count() > 1_000  # and the heap is frozen again


def test_frozen_objects_still_die_by_reference_counting(policy: GcPolicy) -> None:
    policy.start()
    node = Node()
    ref = weakref.ref(node)
    policy.tick()
    del node
    assert ref() is None
