"""`cryptopulse ingest` refuses what cannot work before starting anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cryptopulse.cli import app


@pytest.fixture(autouse=True)
def memory_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOPULSE_BUS_URL", "memory://")


def test_ingest_needs_a_redis_bus() -> None:
    result = CliRunner().invoke(app, ["ingest", "--shard", "0/2"])
    assert result.exit_code == 1
    assert "redis://" in result.output


@pytest.mark.parametrize("shard", ["2/2", "x", "1/0"])
def test_ingest_refuses_a_bad_shard(shard: str) -> None:
    result = CliRunner().invoke(app, ["ingest", "--shard", shard])
    assert result.exit_code == 2
    assert "--shard" in result.output
