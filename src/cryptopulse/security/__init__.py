"""Access control: API keys, JWTs, scopes, plans, rate limits, usage and the audit log."""

from cryptopulse.security.access import ANONYMOUS_SCOPES, AccessControl, AuthError, QuotaExceeded
from cryptopulse.security.keys import generate_key, hash_key, parse_key
from cryptopulse.security.plans import DEFAULT_PLANS, Plan, load_plans
from cryptopulse.security.scopes import ALL_SCOPES, SCOPE_DESCRIPTIONS, Principal, parse_scopes
from cryptopulse.security.tokens import TokenError, TokenIssuer

__all__ = [
    "ALL_SCOPES",
    "ANONYMOUS_SCOPES",
    "DEFAULT_PLANS",
    "SCOPE_DESCRIPTIONS",
    "AccessControl",
    "AuthError",
    "Plan",
    "Principal",
    "QuotaExceeded",
    "TokenError",
    "TokenIssuer",
    "generate_key",
    "hash_key",
    "load_plans",
    "parse_key",
    "parse_scopes",
]
