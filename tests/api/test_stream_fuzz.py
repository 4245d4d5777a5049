"""Fuzz the stream's message parser: random bytes and random JSON only ever give an op or an
`OpError` (an `error` frame), never another exception that would end the connection."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopulse.api._stream_ops import Auth, OpError, Ping, Subscribe, Unsubscribe, parse_op

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
OPS = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "auth", "x"])},
    optional={"id": JSON, "channels": JSON, "resume": JSON, "token": JSON},
)


def check(raw: str | bytes) -> None:
    try:
        op = parse_op(raw)
    except OpError as exc:
        frame = orjson.loads(exc.frame())
        assert frame["type"] == "error" and isinstance(frame["code"], str)
        return
    assert isinstance(op, Subscribe | Unsubscribe | Ping | Auth)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@settings(max_examples=500)
@given(JSON)
def test_random_json(value: object) -> None:
    check(orjson.dumps(value))


@settings(max_examples=1000)
@given(OPS)
def test_random_ops(value: dict[str, object]) -> None:
    check(orjson.dumps(value))
