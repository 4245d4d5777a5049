"""The token registry: names, supplies and sectors, and market cap / FDV from a price.

The registry is data (a YAML document shipped in `cryptopulse/data/tokens.yaml`, merged with
the user's own file); this module only parses mappings already read and does arithmetic.

- market cap = price x circulating supply
- FDV (fully diluted valuation) = price x max supply, or x total supply when there is no cap;
  or price x the token's `totalSupply()` read on-chain, when a fresh one is known
  (`OnchainSupply`, see `fresh_supply`)

Both are in the quote currency of the price used, and come with the supply's as-of date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SUPPLY_FRESH_MS",
    "InvalidRegistry",
    "OnchainSupply",
    "Sector",
    "Supply",
    "Token",
    "TokenRegistry",
    "Valuation",
    "check",
    "fresh_supply",
    "registry_from_mapping",
    "valuation",
]

_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}$")
_SECTOR_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class InvalidRegistry(ValueError):
    """The registry document is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Supply:
    circulating: float | None
    total: float | None
    max: float | None
    as_of: str | None  # ISO date the figures were taken


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    name: str
    supply: Supply
    sectors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sector:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class TokenRegistry:
    tokens: dict[str, Token] = field(default_factory=dict)
    sectors: dict[str, Sector] = field(default_factory=dict)

    def members(self, sector_id: str) -> list[str]:
        """Symbols in a sector, sorted."""
        return sorted(s for s, t in self.tokens.items() if sector_id in t.sectors)

    def merged(self, other: TokenRegistry) -> TokenRegistry:
        """This registry with `other`'s tokens (by symbol) and sectors (by id) replacing ours."""
        return TokenRegistry({**self.tokens, **other.tokens}, {**self.sectors, **other.sectors})


# An on-chain total supply read within this long (by its block's time) replaces the
# registry's static figure for FDV; an older one means the feed has stopped.
SUPPLY_FRESH_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class OnchainSupply:
    """A token's `totalSupply()` read on one chain at one block (token units)."""

    chain: str
    token: str  # contract address
    block_number: int
    time: int  # the block's time, ms
    total: float


def fresh_supply(candidates: Iterable[OnchainSupply], now: int) -> OnchainSupply | None:
    """The on-chain supply to value a token with: among the reads no older than
    `SUPPLY_FRESH_MS`, the largest (a token tracked on several chains is usually issued on
    one and bridged to the others; summing would count the bridged supply twice)."""
    fresh = [c for c in candidates if now - c.time <= SUPPLY_FRESH_MS]
    return max(fresh, key=lambda c: (c.total, c.chain), default=None)


@dataclass(frozen=True, slots=True)
class Valuation:
    price: float
    market_cap: float | None
    fdv: float | None
    as_of: str | None  # of the registry's figures
    supply_source: str = "registry"  # of the supply FDV uses: "registry" or "onchain"
    fdv_supply: float | None = None


def valuation(token: Token, price: float, onchain: OnchainSupply | None = None) -> Valuation:
    """Market cap (x circulating) and FDV (x the on-chain total supply when given, else x
    max, else x total) at `price`."""
    s = token.supply
    cap = price * s.circulating if s.circulating is not None else None
    if onchain is not None:
        return Valuation(price, cap, price * onchain.total, s.as_of, "onchain", onchain.total)
    diluted = s.max if s.max is not None else s.total
    fdv = price * diluted if diluted is not None else None
    return Valuation(price, cap, fdv, s.as_of, "registry", diluted)


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidRegistry(f"{where}: must be a non-negative number or null")
    return float(value)


def _supply(raw: object, where: str) -> Supply:
    if raw is None:
        return Supply(None, None, None, None)
    if not isinstance(raw, Mapping):
        raise InvalidRegistry(f"{where}.supply: must be a mapping")
    as_of = raw.get("as_of")
    if as_of is not None and not isinstance(as_of, str):
        as_of = str(as_of)  # YAML turns an unquoted 2024-11-01 into a date
    return Supply(
        _number(raw.get("circulating"), f"{where}.supply.circulating"),
        _number(raw.get("total"), f"{where}.supply.total"),
        _number(raw.get("max"), f"{where}.supply.max"),
        as_of,
    )


def _token(raw: object, index: int) -> Token:
    where = f"tokens[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidRegistry(f"{where}: must be a mapping")
    symbol = str(raw.get("symbol", "")).upper()
    if not _SYMBOL.match(symbol):
        raise InvalidRegistry(f"{where}.symbol: {symbol!r} is not an asset symbol")
    sectors = raw.get("sectors") or []
    if not isinstance(sectors, list) or not all(isinstance(s, str) for s in sectors):
        raise InvalidRegistry(f"{where}.sectors: must be a list of sector ids")
    return Token(
        symbol,
        str(raw.get("name") or symbol),
        _supply(raw.get("supply"), where),
        tuple(dict.fromkeys(sectors)),
    )


def _sector(raw: object, index: int) -> Sector:
    where = f"sectors[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidRegistry(f"{where}: must be a mapping")
    sector_id = str(raw.get("id", ""))
    if not _SECTOR_ID.match(sector_id):
        raise InvalidRegistry(f"{where}.id: {sector_id!r} must be lower-case letters, digits, -")
    return Sector(sector_id, str(raw.get("name") or sector_id), str(raw.get("description") or ""))


def _items(data: Mapping[str, Any], key: str) -> Iterable[object]:
    raw = data.get(key) or []
    if not isinstance(raw, list):
        raise InvalidRegistry(f"{key}: must be a list")
    return list(raw)


def registry_from_mapping(data: object) -> TokenRegistry:
    """Build a registry from a parsed document (`{"sectors": [...], "tokens": [...]}`).

    A token naming a sector that the document does not define is an error only when the
    registry is checked as a whole (see `check`): a user's file may add tokens to sectors
    defined by the shipped one.
    """
    if data is None:
        return TokenRegistry()
    if not isinstance(data, Mapping):
        raise InvalidRegistry("the registry must be a mapping with `sectors` and `tokens`")
    sectors = [_sector(raw, i) for i, raw in enumerate(_items(data, "sectors"))]
    tokens = [_token(raw, i) for i, raw in enumerate(_items(data, "tokens"))]
    return TokenRegistry({t.symbol: t for t in tokens}, {s.id: s for s in sectors})


def check(registry: TokenRegistry) -> None:
    """Every sector a token names is defined."""
    for token in registry.tokens.values():
        unknown = [s for s in token.sectors if s not in registry.sectors]
        if unknown:
            raise InvalidRegistry(f"token {token.symbol}: unknown sector(s) {', '.join(unknown)}")
