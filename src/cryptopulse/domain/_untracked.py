"""Long-lived numeric state that the cycle collector need not walk.

A live server keeps an indicator set per instrument and interval (5,600 of them at 1,400
instruments), each ~40 small objects and their window lists (~210 slots), holding only
numbers: every full collection walked all of them, ~45 % of the objects a long-running
server had made (docs/benchmarks.md, stop 20). Objects that can never be part of a
reference cycle have no business in the collector's lists, and CPython's C API says so
with ``PyObject_GC_UnTrack`` (what it does itself for tuples and dicts that hold only
atoms). Instances of Python classes cannot ask for it, so `untrack_tree` calls it
through ctypes.

The same holds for the candle aggregators (two per traded instrument: ~12 objects each,
its buckets, dedupe set and deques), the in-process bus's channels (a str, ints, bytes
and a dict of int -> bytes each; ~15 per instrument) and a live series' signal state
(analytics/_signals.py).

The rule that makes it safe: an untracked object holds only atoms (numbers, None, str,
bytes), tuples and dicts of atoms, lists, deques and sets of atoms, and other untracked
objects of the same kind (directly or in those containers). The collector never frees
what an untracked object refers to (the reference counts it cannot explain keep a
referent alive), so breaking the rule could only leak a cycle, never free a live object;
`assert_untrackable` (used by the tests) checks the rule on a whole tree.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections import deque
from collections.abc import Callable

__all__ = ["assert_untrackable", "untrack", "untrack_tree"]

_untrack: Callable[[object], None] | None = None
if sys.implementation.name == "cpython":
    _api = ctypes.pythonapi.PyObject_GC_UnTrack
    _api.argtypes = [ctypes.py_object]
    _api.restype = None
    _untrack = _api

_ATOMS = (int, float, bool, str, bytes, type(None))
# Containers an untracked object may hold, mutated in place and untracked with it: lists,
# deques and sets of atoms and of other untracked objects.
_LEAVES = frozenset({list, deque, set})


def _parts(obj: object, owned: tuple[type, ...], into_leaves: bool = False) -> list[object]:
    """The objects of `obj`'s tree that `untrack_tree` leaves untracked: `obj`, and every
    instance of exactly one of the `owned` classes, list, deque or set reachable from it
    through such instances. `untrack_tree` does not look inside the containers (an
    indicator's windows hold hundreds of numbers); an owned object that goes into one
    later untracks itself when made (`untrack`). `assert_untrackable` looks inside."""
    kinds = frozenset(owned)
    seen, stack, out = {id(obj)}, [obj], []
    while stack:
        node = stack.pop()
        out.append(node)
        for ref in gc.get_referents(node):
            kind = type(ref)
            if id(ref) in seen:
                continue
            if kind in _LEAVES:
                seen.add(id(ref))
                if into_leaves:
                    stack.append(ref)
                else:
                    out.append(ref)
            elif kind in kinds:
                seen.add(id(ref))
                stack.append(ref)
    return out


def untrack(*objects: object) -> None:
    """Take these objects off the collector's lists (each must hold only what the rule
    allows). Nothing happens where the interpreter is not CPython."""
    if _untrack is not None:
        for obj in objects:
            _untrack(obj)  # a no-op on an object already untracked


def untrack_tree(obj: object, owned: tuple[type, ...]) -> None:
    """Take `obj` and the `owned`-class instances and containers it holds (recursively)
    off the collector's lists."""
    untrack(*_parts(obj, owned))


def assert_untrackable(obj: object, owned: tuple[type, ...]) -> None:
    """Fail unless every object of `obj`'s tree holds only what the rule allows."""
    allowed = (type, *owned, *_LEAVES, *_ATOMS)
    for part in _parts(obj, owned, into_leaves=True):
        for ref in gc.get_referents(part):
            if isinstance(ref, allowed):
                continue
            if isinstance(ref, tuple) and all(isinstance(v, _ATOMS) for v in ref):
                continue
            if type(ref) is dict and all(isinstance(v, _ATOMS) for kv in ref.items() for v in kv):
                continue
            raise AssertionError(f"{type(part).__qualname__} holds a {type(ref).__qualname__}")
