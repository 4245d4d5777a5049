"""Client ops and server control frames of `/v1/stream`: parsing and validation, no I/O.

Channel names are normalized here (`trades:COINBASE:btc-usd` -> `trades:coinbase:BTC-USD`)
so that they match the names the pipeline publishes under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from cryptopulse.bus.base import Gap
from cryptopulse.domain.instruments import (
    INTERVALS,
    Instrument,
    InvalidInstrument,
    parse_instrument,
)

# Channels one connection may hold. Plan limits (close 4029) replace this later.
MAX_CHANNELS = 200

# Channel kinds DESIGN.md names whose producers do not exist yet.
_NOT_YET: frozenset[str] = frozenset()
# `onchain:<chain>`: chain names as in CRYPTOPULSE_ONCHAIN_CHAINS.
_CHAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Channels without a parameter (market-wide analytics; `alerts` is the caller's own: the
# connection maps it to the bus channel `alerts:<account>`).
_PLAIN = frozenset({"grades", "sectors", "alerts"})

OpId = int | str | None


class OpError(Exception):
    """A client op the server refuses; the connection stays open and gets an `error` frame."""

    def __init__(self, code: str, message: str, op_id: OpId = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op_id = op_id

    def frame(self) -> str:
        return _frame(
            {"type": "error", "id": self.op_id, "code": self.code, "message": self.message}
        )


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: OpId
    channels: tuple[str, ...]
    resume: dict[str, int]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: OpId
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    id: OpId


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


Op = Subscribe | Unsubscribe | Ping | Auth


def parse_op(raw: str | bytes) -> Op:
    """Parse one client frame into an op; raise `OpError` with the code the client gets."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OpError("invalid_json", "the frame is not valid JSON") from None
    if not isinstance(body, dict):
        raise OpError("invalid_request", "an op is a JSON object")
    op_id = _op_id(body)
    op = body.get("op")
    if not isinstance(op, str):
        raise OpError("invalid_request", "`op` must be a string", op_id)
    if op == "subscribe":
        channels = _channels(body, op_id)
        return Subscribe(op_id, channels, _resume(body, channels, op_id))
    if op == "unsubscribe":
        return Unsubscribe(op_id, _channels(body, op_id))
    if op == "ping":
        return Ping(op_id)
    if op == "auth":
        token = body.get("token")
        if not isinstance(token, str):
            raise OpError("invalid_request", "`token` must be a string", op_id)
        return Auth(token)
    raise OpError("unknown_op", f"unknown op {op!r}", op_id)


def _op_id(body: dict[str, object]) -> OpId:
    op_id = body.get("id")
    # bool is an int subclass; `true` as an id is a client bug worth reporting.
    if op_id is None or (isinstance(op_id, int | str) and not isinstance(op_id, bool)):
        return op_id
    raise OpError("invalid_request", "`id` must be an integer or a string")


def _channels(body: dict[str, object], op_id: OpId) -> tuple[str, ...]:
    raw = body.get("channels")
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise OpError("invalid_request", "`channels` must be a non-empty list of strings", op_id)
    if len(raw) > MAX_CHANNELS:
        raise OpError(
            "too_many_subscriptions", f"at most {MAX_CHANNELS} channels per connection", op_id
        )
    # dict keeps the first spelling's order and drops duplicates after normalizing.
    return tuple(dict.fromkeys(normalize_channel(c, op_id) for c in raw))


def _resume(body: dict[str, object], channels: tuple[str, ...], op_id: OpId) -> dict[str, int]:
    raw = body.get("resume")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OpError("invalid_request", "`resume` must be an object of channel: seq", op_id)
    resume: dict[str, int] = {}
    for name, seq in raw.items():
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise OpError("invalid_request", f"resume seq for {name!r} must be an int >= 0", op_id)
        channel = normalize_channel(name, op_id)
        if channel not in channels:
            raise OpError("invalid_request", f"resume names {name!r}, not in `channels`", op_id)
        resume[channel] = seq
    return resume


def normalize_channel(text: str, op_id: OpId = None) -> str:
    """The canonical name of a channel that exists now, or `OpError(unknown_channel)`."""
    kind, _, rest = text.partition(":")
    if kind == "trades":
        instrument = _instrument(text, rest, op_id)
        if instrument.is_composite:
            raise OpError("unknown_channel", f"{text!r}: trades need EXCHANGE:BASE-QUOTE", op_id)
        return f"trades:{instrument}"
    if kind == "ticker":
        return f"ticker:{_instrument(text, rest, op_id)}"
    if kind == "candles":
        name, _, interval = rest.rpartition(":")
        if interval not in INTERVALS:
            choices = ", ".join(INTERVALS)
            raise OpError("unknown_channel", f"{text!r}: interval must be one of {choices}", op_id)
        return f"candles:{_instrument(text, name, op_id)}:{interval}"
    if kind == "signals":
        return f"signals:{_instrument(text, rest, op_id)}"
    if kind == "predictions":
        return f"predictions:{_instrument(text, rest, op_id)}"
    if kind in _PLAIN and not rest:
        return kind
    if kind == "onchain" and _CHAIN_NAME.match(rest.lower()):
        return f"onchain:{rest.lower()}"
    if kind in _NOT_YET:
        raise OpError("unknown_channel", f"{text!r}: {kind} channels are not available yet", op_id)
    raise OpError("unknown_channel", f"{text!r} is not a channel", op_id)


def _instrument(channel: str, text: str, op_id: OpId) -> Instrument:
    try:
        return parse_instrument(text)
    except InvalidInstrument as exc:
        raise OpError("unknown_channel", f"{channel!r}: {exc}", op_id) from None


def is_conflated(channel: str) -> bool:
    """Ticker channels carry state, not events: only the latest pending value matters."""
    return channel.startswith("ticker:")


def _frame(fields: dict[str, object]) -> str:
    return orjson.dumps(fields).decode()


def subscribed_frame(op_id: OpId, channels: tuple[str, ...]) -> str:
    return _frame({"type": "subscribed", "id": op_id, "channels": list(channels)})


def unsubscribed_frame(op_id: OpId, channels: tuple[str, ...]) -> str:
    return _frame({"type": "unsubscribed", "id": op_id, "channels": list(channels)})


def authenticated_frame() -> str:
    return _frame({"type": "authenticated"})


def pong_frame(op_id: OpId) -> str:
    return _frame({"type": "pong", "id": op_id})


def gap_frame(channel: str, gap: Gap) -> str:
    return _frame(
        {"type": "gap", "channel": channel, "from_seq": gap.from_seq, "to_seq": gap.to_seq}
    )


def heartbeat_frame(time: int) -> str:
    return _frame({"type": "heartbeat", "time": time})
