"""What a full garbage collection walks from an object (for tests of long-lived state)."""

from __future__ import annotations

import gc


def collector_visits(root: object) -> int:
    """Every referent of every tracked object reachable from `root`, counted as the
    collector visits them (`gc.get_referents` is its own traversal); classes are not
    followed (they belong to the import-time heap)."""
    seen, stack, visits = {id(root)}, [root], 0
    while stack:
        for ref in gc.get_referents(stack.pop()):
            visits += 1
            if id(ref) not in seen and gc.is_tracked(ref) and not isinstance(ref, type):
                seen.add(id(ref))
                stack.append(ref)
    return visits


def tracked_below(root: object) -> list[object]:
    """Tracked objects held by `root` or by the untracked objects below it (classes aside,
    and tuples, which CPython untracks by itself once a collection sees they hold atoms):
    what an untracked tree must not hold (domain/_untracked.py)."""
    found, seen, stack = [], {id(root)}, [root]
    while stack:
        for ref in gc.get_referents(stack.pop()):
            if isinstance(ref, type | tuple) or id(ref) in seen:
                continue
            seen.add(id(ref))
            if gc.is_tracked(ref):
                found.append(ref)
            else:
                stack.append(ref)
    return found
