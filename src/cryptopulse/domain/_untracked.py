"""Long-lived numeric state that the cycle collector need not walk.

A live server keeps an indicator set per instrument and interval (5,600 of them at 1,400
instruments), each ~40 small objects and their window lists (~210 slots), holding only
numbers: every full collection walked all of them, ~45 % of the objects a long-running
server had made (docs/benchmarks.md, stop 20). Objects that can never be part of a
reference cycle have no business in the collector's lists, and CPython's C API says so
with ``PyObject_GC_UnTrack`` (what it does itself for tuples and dicts that hold only
atoms). Instances of Python classes cannot ask for it, so `untrack_tree` calls it
through ctypes.

The rule that makes it safe: an untracked object holds only numbers, None, tuples of
them, lists of numbers, and other untracked objects of the same kind. The
collector never frees what an untracked object refers to (the reference counts it
cannot explain keep a referent alive), so breaking the rule could only leak a cycle,
never free a live object; `assert_untrackable` (used by the tests) checks the rule on a
whole tree.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable

__all__ = ["assert_untrackable", "untrack_tree"]

_untrack: Callable[[object], None] | None = None
if sys.implementation.name == "cpython":
    _api = ctypes.pythonapi.PyObject_GC_UnTrack
    _api.argtypes = [ctypes.py_object]
    _api.restype = None
    _untrack = _api

_ATOMS = (int, float, bool, str, type(None))


def _parts(obj: object, owned: tuple[type, ...]) -> list[object]:
    """The objects of `obj`'s tree that `untrack_tree` leaves untracked: `obj`, and every
    instance of exactly one of the `owned` classes or list reachable from it through such
    instances (lists are leaves: by the rule, they hold numbers only)."""
    kinds = frozenset(owned)
    seen, stack, out = {id(obj)}, [obj], []
    while stack:
        node = stack.pop()
        out.append(node)
        for ref in gc.get_referents(node):
            kind = type(ref)
            if kind is list:
                if id(ref) not in seen:
                    seen.add(id(ref))
                    out.append(ref)
            elif kind in kinds and id(ref) not in seen:
                seen.add(id(ref))
                stack.append(ref)
    return out


def untrack_tree(obj: object, owned: tuple[type, ...]) -> None:
    """Take `obj` and the `owned`-class instances and lists it holds (recursively) off
    the collector's lists. Nothing happens where the interpreter is not
    CPython."""
    if _untrack is not None:
        for part in _parts(obj, owned):
            _untrack(part)  # a no-op on an object already untracked


def assert_untrackable(obj: object, owned: tuple[type, ...]) -> None:
    """Fail unless every object of `obj`'s tree holds only what the rule allows."""
    allowed = (type, *owned, list, *_ATOMS)
    for part in _parts(obj, owned):
        for ref in gc.get_referents(part):
            if isinstance(ref, allowed):
                continue
            if isinstance(ref, tuple) and all(isinstance(v, _ATOMS) for v in ref):
                continue
            raise AssertionError(f"{type(part).__qualname__} holds a {type(ref).__qualname__}")
