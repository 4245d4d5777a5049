"""FDV from an on-chain total supply: freshness, the choice among chains, the fallback."""

from __future__ import annotations

from cryptopulse.domain.tokens import (
    SUPPLY_FRESH_MS,
    OnchainSupply,
    Supply,
    Token,
    fresh_supply,
    valuation,
)

NOW = 1_800_000_000_000


def make_token(max_supply: float | None = 2_000.0) -> Token:
    return Token("TST", "Test", Supply(100.0, 1_000.0, max_supply, "2024-11-01"), ())


def read(chain: str, total: float, age_ms: int) -> OnchainSupply:
    return OnchainSupply(chain, "0x" + "ab" * 20, 42, NOW - age_ms, total)


def test_fdv_uses_the_onchain_total_supply_and_says_so() -> None:
    value = valuation(make_token(), 2.0, read("ethereum", 1_500.0, 0))
    assert (value.fdv, value.fdv_supply, value.supply_source) == (3_000.0, 1_500.0, "onchain")
    assert value.market_cap == 200.0  # circulating stays the registry's


def test_without_onchain_supply_the_registry_figures_are_used() -> None:
    value = valuation(make_token(), 2.0)
    assert (value.fdv, value.fdv_supply, value.supply_source) == (4_000.0, 2_000.0, "registry")
    uncapped = valuation(make_token(max_supply=None), 2.0)
    assert (uncapped.fdv, uncapped.fdv_supply) == (2_000.0, 1_000.0)


def test_only_fresh_reads_count_and_the_largest_wins() -> None:
    assert fresh_supply([], NOW) is None
    assert fresh_supply([read("ethereum", 10.0, SUPPLY_FRESH_MS + 1)], NOW) is None
    edge = read("ethereum", 10.0, SUPPLY_FRESH_MS)
    assert fresh_supply([edge], NOW) == edge
    native, bridged = read("ethereum", 900.0, 60_000), read("base", 100.0, 1_000)
    stale_bigger = read("arbitrum", 5_000.0, SUPPLY_FRESH_MS + 1)
    assert fresh_supply([bridged, stale_bigger, native], NOW) == native
    assert fresh_supply([native, bridged], NOW) == fresh_supply([bridged, native], NOW)
