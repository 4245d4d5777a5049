"""`AsyncClient.stream` against the real `cryptopulse serve`, killed and restarted mid-stream.

"Once, in order" across a restart (the in-memory bus restarts its seqs, so the client gets
a `gap` or resumes into new seqs): on `trades:` every trade the server stored between the
first and the last one the consumer saw arrives exactly once (by `trade_id`), in time
order; on `candles:` open times never go back and no stored candle in between is missed.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from serve import first_key, free_port, start, stop, wait_ready

from cryptopulse.client import AsyncClient, StreamMessage

TRADES = "trades:sim:BTC-USD"
CANDLES = "candles:sim:BTC-USD:1m"


async def consume(client: AsyncClient, out: list[StreamMessage], stream_box: list[object]) -> None:
    stream = client.stream([TRADES, CANDLES], backoff_s=0.05, max_backoff_s=0.5)
    stream_box.append(stream)
    async for message in stream:
        out.append(message)


async def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def stored_trades(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select trade_id, time from trades where instrument = ? order by time", ("sim:BTC-USD",)
        ).fetchall()
    return [(str(i), int(t)) for i, t in rows]


def stored_candles(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select open_time from candles where instrument = ? and interval = '1m'",
            ("sim:BTC-USD",),
        ).fetchall()
    return {int(r[0]) for r in rows}


async def restart(db: Path, port: int, proc, sig: int):  # type: ignore[no-untyped-def]
    await asyncio.to_thread(stop, proc, sig)
    await asyncio.sleep(0.5)  # the consumer is retrying meanwhile
    proc = start(db, port)
    await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", proc)
    return proc


def check_trades(messages: list[StreamMessage], stored: list[tuple[str, int]]) -> None:
    trades = [m.data for m in messages if m.channel == TRADES]
    ids = [str(t["trade_id"]) for t in trades]
    assert len(ids) == len(set(ids)), "a trade was delivered twice"
    times = [int(t["time"]) for t in trades]
    assert times == sorted(times), "trades out of time order"
    first, last = times[0], times[-1]
    expected = {i for i, t in stored if first < t < last}
    got = {i for i, t in zip(ids, times, strict=True) if first < t < last}
    assert got == expected, f"missing {len(expected - got)}, extra {len(got - expected)}"


async def test_stream_survives_server_restarts_once_and_in_order(tmp_path: Path) -> None:
    db, port = tmp_path / "s.db", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port)
    await asyncio.to_thread(wait_ready, base, proc)
    client = AsyncClient(base, first_key(db))
    messages: list[StreamMessage] = []
    box: list[object] = []
    task = asyncio.create_task(consume(client, messages, box))
    try:
        await wait_for(lambda: sum(m.channel == TRADES for m in messages) >= 20, 15)
        proc = await restart(db, port, proc, signal.SIGTERM)  # clean: closes with 1001
        seen = len(messages)
        await wait_for(lambda: len(messages) > seen + 20, 15)
        await asyncio.sleep(1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await asyncio.to_thread(stop, proc)
    stream = box[0]
    assert stream.reconnects >= 1  # type: ignore[attr-defined]
    assert any(m.kind == "refetch" for m in messages if m.channel == TRADES)
    check_trades(messages, stored_trades(db))
    opens = [int(m.data["open_time"]) for m in messages if m.channel == CANDLES]
    assert opens == sorted(opens)
    assert {t for t in stored_candles(db) if opens[0] <= t <= opens[-1]} <= set(opens)


async def test_stream_after_a_hard_kill_has_no_duplicates(tmp_path: Path) -> None:
    """SIGKILL loses the server's unflushed trades (they exist nowhere any more), so here
    the promise is no repeat and no reordering, and trades flow again after the restart."""
    db, port = tmp_path / "s.db", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port)
    await asyncio.to_thread(wait_ready, base, proc)
    client = AsyncClient(base, first_key(db))
    messages: list[StreamMessage] = []
    task = asyncio.create_task(consume(client, messages, []))
    try:
        await wait_for(lambda: len(messages) >= 20, 15)
        proc = await restart(db, port, proc, signal.SIGKILL)
        seen = len(messages)
        await wait_for(lambda: sum(m.channel == TRADES for m in messages[seen:]) >= 10, 15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await asyncio.to_thread(stop, proc)
    trades = [m.data for m in messages if m.channel == TRADES]
    ids = [t["trade_id"] for t in trades]
    assert len(ids) == len(set(ids))
    times = [t["time"] for t in trades]
    assert times == sorted(times)
