"""The trade frames of the real captures (../shared/data/captures), replayable in a loop.

A capture holds a few seconds of traffic and ~180 trades, so a benchmark replays it many
times. Replayed as is, every lap after the first would be duplicates (same trade ids) and
late (same times) and the pipeline would drop them at the door. Each lap is therefore
rewritten once, before timing: trade ids move up by ``lap * 10**9`` and exchange times by
``lap * span`` (span: the capture's length rounded up to a second), so the stream reads
like a continuous live feed and candles open and close as they would live. The bytes keep
each venue's wire format exactly; only those numbers change.

Frames kept: those of the trade channels our sources subscribe to: Coinbase
``match``/``last_match``, Binance ``aggTrade``, Kraken ``trade``. Book frames are skipped:
our sources do not subscribe to books, and a parser that ignores them would make any
ingest figure look better than it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cryptopulse.sources.capture import Exchange, protocol_for_url, read_capture

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "captures"
FILES = ("COINBASE.ws.28.0", "BINANCE.ws.1.0", "KRAKEN.ws.48.0")
_ID_STEP = 10**9


@dataclass(frozen=True, slots=True)
class Frame:
    """One server frame: the venue, the receipt time (ms) and the exact bytes."""

    exchange: Exchange
    received_ms: int
    raw: bytes


def _is_trade_frame(exchange: Exchange, msg: Any) -> bool:
    if exchange == "coinbase":
        return isinstance(msg, dict) and msg.get("type") in ("match", "last_match")
    if exchange == "binance":
        data = msg.get("data") if isinstance(msg, dict) else None
        return isinstance(data, dict) and data.get("e") == "aggTrade"
    return isinstance(msg, list) and len(msg) >= 4 and msg[-2] == "trade"


def load_trade_frames(captures: Path = CAPTURES) -> list[list[Frame]]:
    """The trade frames of each of the three captures, in receipt order."""
    files: list[list[Frame]] = []
    for name in FILES:
        frames: list[Frame] = []
        exchange: Exchange | None = None
        for line in read_capture(captures / name):
            if line.direction == "open":
                exchange = protocol_for_url(line.url or "")
                continue
            if line.direction != "received" or exchange is None:
                continue
            if _is_trade_frame(exchange, orjson.loads(line.payload)):
                raw = line.payload.encode()
                frames.append(Frame(exchange, int(line.received * 1000), raw))
        files.append(frames)
    return files


def _shift_iso(text: str, ms: int) -> str:
    head, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head).replace(tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{stamp.strftime('%Y-%m-%dT%H:%M:%S')}.{frac or '0'}Z"


def _shift(frame: Frame, lap: int, span_ms: int) -> bytes:
    if lap == 0:
        return frame.raw
    shift = lap * span_ms
    msg = orjson.loads(frame.raw)
    if frame.exchange == "coinbase":
        msg["trade_id"] += lap * _ID_STEP
        msg["time"] = _shift_iso(msg["time"], shift)
    elif frame.exchange == "binance":
        data = msg["data"]
        data["a"] += lap * _ID_STEP
        data["T"] += shift
        data["E"] += shift
    else:
        # Kraken trades carry no id (the parser derives one from time, side, price and size),
        # so the shifted time alone makes each lap's trades new.
        for entry in msg[1]:
            entry[2] = f"{float(entry[2]) + shift / 1000:.6f}"
    return orjson.dumps(msg)


def laps(files: list[list[Frame]], count: int) -> list[Frame]:
    """`count` back-to-back laps of every file's frames, ids and times shifted per lap.

    The captures were recorded on different days; within a lap the files are interleaved
    by receipt time relative to each file's first frame, as if recorded together.
    """
    keyed: list[tuple[int, int, Frame]] = []
    for frames in files:
        first = frames[0].received_ms
        span_ms = ((frames[-1].received_ms - first) // 1000 + 1) * 1000
        for lap in range(count):
            for frame in frames:
                offset = frame.received_ms - first
                shifted = Frame(
                    frame.exchange, frame.received_ms + lap * span_ms, _shift(frame, lap, span_ms)
                )
                keyed.append((lap, offset, shifted))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [frame for _, _, frame in keyed]
