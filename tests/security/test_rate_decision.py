"""A rate decision's headers: the pairs the stack sends and the lines the hot path writes."""

from __future__ import annotations

import time

import pytest

from cryptopulse.security.ratelimit import HEADER_FAMILIES, RateDecision

POLICY = '"minute";q=120;w=60, "burst";q=20;w=1'


@pytest.mark.parametrize(
    "families", [HEADER_FAMILIES, ("x", "ietf"), ("draft",), ("x",), ()], ids=repr
)
@pytest.mark.parametrize("allowed", [True, False])
def test_header_lines_are_the_headers_as_written(families: tuple[str, ...], allowed: bool) -> None:
    decision = RateDecision(allowed, 120, 0 if not allowed else 37, 12, 9, POLICY, families)
    before = int(time.time())
    lines = decision.header_lines()
    after = int(time.time())
    pairs = decision.headers()
    assert lines.endswith(b"\r\n") or not families and allowed
    names = [name for name, _ in pairs]
    expected: list[bytes] = []
    if "ietf" in families:
        expected += [b"ratelimit-policy", b"ratelimit"]
    if "draft" in families:
        expected += [b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"]
    if "x" in families:
        expected += [b"x-ratelimit-limit", b"x-ratelimit-remaining", b"x-ratelimit-reset"]
    if not allowed:
        expected.append(b"retry-after")
    assert names == expected
    values = dict(pairs)
    remaining = str(decision.remaining).encode()
    assert values.get(b"ratelimit-policy", POLICY.encode()) == POLICY.encode()
    assert values.get(b"ratelimit", b'"minute";r=%s;t=12' % remaining) == (
        b'"minute";r=%s;t=12' % remaining
    )
    for name in (b"ratelimit-remaining", b"x-ratelimit-remaining"):
        assert values.get(name, remaining) == remaining
    for name in (b"ratelimit-limit", b"x-ratelimit-limit"):
        assert values.get(name, b"120") == b"120"
    assert values.get(b"ratelimit-reset", b"12") == b"12"
    if b"x-ratelimit-reset" in values:
        assert before + 12 <= int(values[b"x-ratelimit-reset"]) <= after + 13
    assert values.get(b"retry-after", b"9") == b"9"
    # The lines are the pairs rendered as HTTP/1.1 headers, in the same order.
    rendered = b"".join(b"%s: %s\r\n" % pair for pair in pairs)
    assert _blank_reset(lines) == _blank_reset(rendered)


def _blank_reset(lines: bytes) -> bytes:
    """The x-ratelimit-reset value blanked (epoch seconds: two renderings may straddle one)."""
    out = []
    for line in lines.split(b"\r\n"):
        if line.startswith(b"x-ratelimit-reset: "):
            line = b"x-ratelimit-reset: *"
        out.append(line)
    return b"\r\n".join(out)


def test_a_decision_is_frozen() -> None:
    decision = RateDecision(True, 1, 1, 1, 1, POLICY)
    with pytest.raises(AttributeError):
        decision.remaining = 5  # type: ignore[misc]
