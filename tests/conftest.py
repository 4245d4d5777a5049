"""Session-wide fixtures: the real PostgreSQL server (never skipped: a down server fails)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from scaleout.services import RedisServer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_sessionstart(session: pytest.Session) -> None:
    """The real captures, candles and trades live next to the checkout, never in it: a
    checkout elsewhere stops here with one message, not a hundred FileNotFoundErrors."""
    if not DATA.is_dir():
        raise pytest.UsageError(
            f"shared test data not found at {DATA}: the tests read ../shared/data, "
            "next to this checkout (README, 'The two commands')"
        )


POSTGRES_URL = os.environ.get(
    "CRYPTOPULSE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"cp_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store test runs on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/store.db"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def data_dir() -> Path:
    assert DATA.is_dir(), f"shared test data not found at {DATA}"
    return DATA


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private redis-server (tests/scaleout/services.py): its stats, slowlog and
    liveness are the test's alone, and it can be stopped and restarted (outages)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
