"""Process-level tuning that a serving process applies when its services start."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptopulse.runtime import Services, tune_gc
from cryptopulse.settings import Settings


@pytest.fixture
def saved_threshold() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


def test_tune_gc_sets_the_young_threshold_and_keeps_the_older_ratios(
    saved_threshold: tuple[int, int, int],
) -> None:
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, saved_threshold[1], saved_threshold[2])
    tune_gc(0)  # 0: leave it as it is
    assert gc.get_threshold()[0] == 12_345


async def test_starting_the_services_applies_the_setting(
    tmp_path: Path, saved_threshold: tuple[int, int, int]
) -> None:
    gc.set_threshold(700, saved_threshold[1], saved_threshold[2])
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gc.db",
        analytics_enabled=False,
        gc_threshold=23_456,
    )
    services = Services.create(settings, sources=[])
    await services.start()
    try:
        assert gc.get_threshold()[0] == 23_456
    finally:
        await services.stop()
    assert Settings().gc_threshold == 10_000
