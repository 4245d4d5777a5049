"""One recomputation of grades and sectors over a snapshot of the universe (runs in a thread)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptopulse.analytics._onchain import activity_factor
from cryptopulse.domain.correlation import Series
from cryptopulse.domain.grades import Grade, GradeParams, compute_grades
from cryptopulse.domain.sectors import SectorParams, SectorSnapshot, compute_sectors
from cryptopulse.domain.tokens import TokenRegistry


@dataclass(frozen=True, slots=True)
class Computed:
    as_of: int
    grades: dict[int, dict[str, Grade]]  # time -> symbol -> grade (as_of and backfill times)
    sectors: dict[str, SectorSnapshot]


def compute(
    universe: Mapping[str, Series],
    registry: TokenRegistry,
    as_of: int,
    grade_times: Sequence[int],
    grade_params: GradeParams,
    sector_params: SectorParams,
    onchain: Mapping[str, Mapping[int, float]] | None = None,
) -> Computed:
    """Grades at each of `grade_times` and the sectors at `as_of` (pure, CPU-bound);
    `onchain` is each token symbol's daily on-chain activity (analytics/_onchain.py)."""
    grades = {
        t: compute_grades(universe, t, grade_params, activity_factor(onchain or {}, t))
        for t in sorted(set(grade_times))
    }
    members = {sector_id: registry.members(sector_id) for sector_id in registry.sectors}
    circulating = {s: t.supply.circulating for s, t in registry.tokens.items()}
    sectors = compute_sectors(members, universe, circulating, as_of, sector_params)
    return Computed(as_of, grades, sectors)
