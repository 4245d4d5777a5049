"""The token registry: the shipped file, user overrides, validation, market cap and FDV."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cryptopulse.analytics.registry import load_registry, shipped_registry_text
from cryptopulse.domain.tokens import (
    InvalidRegistry,
    Supply,
    Token,
    check,
    registry_from_mapping,
    valuation,
)

TEST_UNIVERSE = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC")
MAJORS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "BNB")
DEFAULT_SECTORS = (
    "l1",
    "l2",
    "defi",
    "ai-agents",
    "base-ecosystem",
    "rwa",
    "depin",
    "memes",
    "stablecoins",
    "exchange-tokens",
)


def make_token(
    circulating: float | None = 100.0, total: float | None = 150.0, max_supply: float | None = 200.0
) -> Token:
    return Token("ABC", "Alphabet", Supply(circulating, total, max_supply, "2024-11-01"), ("l1",))


def test_shipped_registry_covers_the_test_universe_majors_and_default_sectors() -> None:
    registry = load_registry()
    assert set(TEST_UNIVERSE) | set(MAJORS) <= set(registry.tokens)
    assert set(DEFAULT_SECTORS) <= set(registry.sectors)
    for sector in DEFAULT_SECTORS:
        assert registry.members(sector), f"sector {sector} has no member"
    for token in registry.tokens.values():
        assert token.sectors and token.supply.circulating and token.supply.as_of
        s = token.supply
        assert s.total is None or (s.circulating or 0.0) <= s.total
        assert s.max is None or s.total is None or s.total <= s.max


def test_shipped_registry_is_read_from_the_installed_package() -> None:
    document = yaml.safe_load(shipped_registry_text())
    assert document["version"] == 1 and len(document["tokens"]) >= 30


def test_market_cap_uses_circulating_and_fdv_the_max_supply() -> None:
    value = valuation(make_token(), 2.5)
    assert (value.market_cap, value.fdv, value.as_of) == (250.0, 500.0, "2024-11-01")


def test_fdv_falls_back_to_total_supply_without_a_cap() -> None:
    assert valuation(make_token(max_supply=None), 2.0).fdv == 300.0
    nothing = valuation(make_token(None, None, None), 2.0)
    assert (nothing.market_cap, nothing.fdv) == (None, None)


def test_user_file_replaces_tokens_by_symbol_and_adds_sectors(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        """
sectors:
  - {id: gaming, name: Gaming}
tokens:
  - symbol: eth
    name: Ether
    supply: {circulating: 1, total: 2, max: null, as_of: 2025-01-01}
    sectors: [l1, gaming]
  - {symbol: IMX, name: Immutable, sectors: [gaming, l2]}
"""
    )
    registry = load_registry(path)
    assert registry.tokens["ETH"].name == "Ether"
    assert registry.tokens["ETH"].supply.as_of == "2025-01-01"  # an unquoted YAML date
    assert registry.members("gaming") == ["ETH", "IMX"]
    assert "BTC" in registry.tokens  # the shipped tokens stay


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "mapping"),
        ({"tokens": {"symbol": "X"}}, "tokens: must be a list"),
        ({"tokens": [{"symbol": "not a symbol"}]}, "tokens[0].symbol"),
        ({"tokens": [{"symbol": "X", "supply": {"circulating": -1}}]}, "circulating"),
        ({"tokens": [{"symbol": "X", "supply": {"total": "many"}}]}, "total"),
        ({"tokens": [{"symbol": "X", "sectors": "l1"}]}, "sectors"),
        ({"sectors": [{"id": "Bad Id"}]}, "sectors[0].id"),
    ],
)
def test_malformed_documents_name_the_bad_entry(document: object, message: str) -> None:
    with pytest.raises(InvalidRegistry, match=message.replace("[", r"\[").replace("]", r"\]")):
        registry_from_mapping(document)


def test_a_token_in_an_undefined_sector_is_refused(tmp_path: Path) -> None:
    registry = registry_from_mapping({"tokens": [{"symbol": "X", "sectors": ["nowhere"]}]})
    with pytest.raises(InvalidRegistry, match="nowhere"):
        check(registry)
    path = tmp_path / "bad.yaml"
    path.write_text("tokens:\n  - {symbol: X, sectors: [nowhere]}\n")
    with pytest.raises(InvalidRegistry):
        load_registry(path)
