"""When to try a webhook delivery again: the retry schedule with jitter, and Retry-After."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Sequence

__all__ = ["DEFAULT_SCHEDULE_S", "next_delay_s", "retry_after_s"]

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (the Standard Webhooks default).
DEFAULT_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
_JITTER = 0.2  # +-20 %: endpoints that failed together do not retry in lockstep
_MAX_RETRY_AFTER_S = 86_400.0


def next_delay_s(
    schedule: Sequence[float], attempts: int, rng: random.Random | None = None
) -> float | None:
    """Seconds until attempt number `attempts + 1` (after `attempts` failures), or None
    when the schedule is exhausted. `schedule[0]` is the first attempt's delay."""
    if attempts >= len(schedule):
        return None
    base = float(schedule[attempts])
    if base <= 0:
        return 0.0
    jitter = (rng or random).uniform(-_JITTER, _JITTER)  # noqa: S311  (not for secrets)
    return base * (1.0 + jitter)


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), bounded."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - now_s), _MAX_RETRY_AFTER_S)
