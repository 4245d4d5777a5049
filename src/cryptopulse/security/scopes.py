"""Scopes and the authenticated caller (`Principal`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "SCOPE_DESCRIPTIONS", "Principal", "parse_scopes"]

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "market:read": "Market data: instruments, tickers, candles, trades, market streams",
    "signals:read": "Signals, grades, sectors and analytics",
    "alerts:write": "Create and manage alert rules",
    "webhooks:write": "Create and manage webhook endpoints",
    "admin": "Manage API keys of the account (the operator account: of every account)",
}
ALL_SCOPES = frozenset(SCOPE_DESCRIPTIONS)


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """Scopes from a space/comma separated string or a list; unknown names raise ValueError."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = sorted(set(items) - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    return frozenset(items)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `key_id` is None for anonymous callers (public plan)."""

    account: str
    scopes: frozenset[str]
    plan: str
    key_id: str | None
    via: str  # "key", "jwt" or "anonymous"
    # JWTs only: when the token stops being valid (seconds since the epoch).
    expires_at: float | None = None

    @property
    def limit_id(self) -> str:
        """What rate limits and connection counts are keyed on."""
        return f"key:{self.key_id}" if self.key_id else f"anon:{self.account}"

    def has(self, scope: str) -> bool:
        return scope in self.scopes
