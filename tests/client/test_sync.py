"""The blocking `Client` against the real `cryptopulse serve` on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from serve import first_key, free_port, start, stop, wait_ready

from cryptopulse.client import Client, NotFound, Unauthorized


def test_blocking_client_reads_the_live_simulator(tmp_path: Path) -> None:
    db, port = tmp_path / "s.db", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port)
    try:
        wait_ready(base, proc)
        with Client(base, first_key(db), use_jwt=True) as client:
            assert client.me().via == "jwt"
            assert client.readyz().mode == "simulated"
            deadline = time.monotonic() + 10
            while not client.trades("sim:BTC-USD", limit=1).data:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            rows = list(client.paginate(client.trades, "sim:BTC-USD", limit=50))
            assert len({t.trade_id for t in rows}) == len(rows) >= 1
            assert client.ticker("BTC-USD").source == "simulated"
            with pytest.raises(NotFound):
                client.candles("nowhere:FOO-BAR")
        with Client(base) as anonymous, pytest.raises(Unauthorized):
            anonymous.instruments()
    finally:
        stop(proc)
