"""The scale-out deployment for real on 127.0.0.1: nginx in front of two API replicas of
two workers each, two ingest shards (a replayed capture and the simulator), PostgreSQL
and a private Redis. One test walks through the checks in order, since some are
destructive (a replica is killed, Redis restarted)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from cryptopulse.settings import DEFAULT_INSTRUMENTS
from cryptopulse.sharding import Shard
from scaleout.cluster import Cluster
from scaleout.services import until
from scaleout.streams import StreamClient

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres, pytest.mark.redis]

SIM_PAIR = Shard(1, 2).select([name.split(":", 1)[1] for name in DEFAULT_INSTRUMENTS])[0]
TRADES = f"trades:sim:{SIM_PAIR}"
CANDLES = f"candles:sim:{SIM_PAIR}:1m"


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/v1/stream"


async def clients(urls: list[str], channels: list[str]) -> list[StreamClient]:
    made = [StreamClient(url, channels) for url in urls]
    for client in made:
        client.start()
    await until(lambda: all(len(c.seqs(TRADES)) >= 3 for c in made), timeout=15)
    return made


async def replicas_agree(cluster: Cluster) -> None:
    """The same channel has the same seqs and bytes through either replica."""
    pair = await clients([ws_url(p) for p in cluster.api_ports], [TRADES, CANDLES])
    await asyncio.sleep(2)
    for client in pair:
        await client.stop()
    a, b = pair
    common = sorted(set(a.texts) & set(b.texts))
    assert len([k for k in common if k[0] == TRADES]) >= 5
    assert all(a.texts[key] == b.texts[key] for key in common)
    for client in pair:
        seqs = client.seqs(TRADES, ("data",))
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def rate_limits_hold_across_replicas(cluster: Cluster) -> None:
    """20 requests a minute for anonymous callers: shared by 4 workers in 2 replicas."""
    url = f"http://127.0.0.1:{cluster.nginx_port}/v1/instruments"
    with httpx.Client(timeout=5) as http:
        statuses = [http.get(url) for _ in range(60)]
    ok = [r for r in statuses if r.status_code == 200]
    limited = [r for r in statuses if r.status_code == 429]
    assert 1 <= len(ok) <= 20, [r.status_code for r in statuses]
    assert len(ok) + len(limited) == 60
    assert all("retry-after" in r.headers for r in limited)


async def failover_resumes_without_loss(cluster: Cluster) -> None:
    """Kill a replica: its clients reconnect through nginx to the other and resume."""
    nginx = ws_url(cluster.nginx_port)
    group = await clients([nginx] * 4, [TRADES])
    cluster.kill("api-0", signal.SIGKILL)
    moved = [c for c in group if c.connections > 1 or c.closes]
    await until(lambda: any(c.connections > 1 for c in group), timeout=10)
    await asyncio.sleep(2)
    for client in group:
        await client.stop()
    moved = [c for c in group if c.connections > 1]
    assert moved, "no client was on the killed replica"
    for client in group:
        seqs = client.seqs(TRADES, ("data",))
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a message went missing"
        assert not client.of_type("gap")


async def redis_restart_gives_gap_and_snapshot(cluster: Cluster) -> StreamClient:
    """Redis restarted empty mid-stream: an `error`, then `gap` + snapshot, never silence."""
    (client,) = await clients([ws_url(cluster.nginx_port)], [TRADES, CANDLES])
    cluster.redis.stop()
    await until(lambda: bool(client.of_type("error")), timeout=5)
    assert client.of_type("error")[0]["code"] == "upstream_unavailable"
    await asyncio.sleep(2.5)  # the ingest outbox (300 messages) overflows meanwhile
    seen = len(client.seqs(TRADES))
    cluster.redis.start()
    restarted = time.monotonic()
    await until(lambda: len(client.seqs(TRADES)) > seen + 3, timeout=10)
    assert time.monotonic() - restarted < 10
    assert client.connections == 1  # the stream stayed open throughout
    assert client.of_type("gap", TRADES)
    assert client.holes_without_gap(TRADES) == []
    return client


async def draining_replica_closes_streams_with_1001(cluster: Cluster, client: StreamClient) -> None:
    """SIGTERM to the last replica: its stream clients get 1001 (reconnect and resume)."""
    cluster.kill("api-1", signal.SIGTERM)
    await until(lambda: bool(client.closes), timeout=10)
    assert client.closes[0] == 1001
    await client.stop()


def closed_candles_are_all_stored(cluster: Cluster, client: StreamClient) -> None:
    """After the ingest shard drained (SIGTERM), every closed candle is in PostgreSQL."""
    cluster.kill("ingest-1", signal.SIGTERM)
    with psycopg.connect(cluster.pg_dsn) as conn:
        rows = conn.execute(
            "SELECT open_time, close, closed FROM candles WHERE instrument = %s "
            "AND interval = '1m' ORDER BY open_time",
            (f"sim:{SIM_PAIR}",),
        ).fetchall()
    times = [row[0] for row in rows]
    assert times and times == list(range(times[0], times[-1] + 60_000, 60_000))
    stored = {row[0]: (row[1], row[2]) for row in rows}
    for frame in client.frames:
        if frame.get("channel") == CANDLES and frame["type"] == "data" and frame["data"]["closed"]:
            assert stored[frame["data"]["open_time"]] == (frame["data"]["close"], True)


@pytest.mark.timeout(240)
async def test_two_replicas_behind_nginx_with_two_ingest_shards(
    tmp_path: Path, data_dir: Path
) -> None:
    capture = data_dir / "captures" / "COINBASE.ws.28.0"
    cluster = Cluster(tmp_path, capture, {"CRYPTOPULSE_REDIS_OUTBOX": "300"})
    try:
        cluster.start()
        await replicas_agree(cluster)
        rate_limits_hold_across_replicas(cluster)
        await failover_resumes_without_loss(cluster)
        client = await redis_restart_gives_gap_and_snapshot(cluster)
        await draining_replica_closes_streams_with_1001(cluster, client)
        closed_candles_are_all_stored(cluster, client)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
