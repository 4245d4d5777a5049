"""Short-lived JWTs for the OAuth2 client-credentials grant.

HS256 only (the list of accepted algorithms is pinned here, never read from a token), with
a secret from settings. `kid` names the secret: a digest of it, so the current secret and
the previous ones (kept while tokens they signed are still alive) can be told apart
without revealing anything. `exp`, `nbf`, `iat`, `iss`, `aud` and `sub` are required.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["ALGORITHM", "TokenError", "TokenIssuer", "TokenClaims", "key_id_of"]

ALGORITHM = "HS256"
_ALGORITHMS = [ALGORITHM]
_REQUIRED = ["exp", "nbf", "iat", "iss", "aud", "sub"]
# Clock skew tolerated between replicas, in seconds.
_LEEWAY_S = 5


class TokenError(Exception):
    """The token is not one we issued, or no longer valid. The message is safe to return."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    key_id: str
    account: str
    scopes: frozenset[str]
    plan: str
    expires_at: float


def key_id_of(secret: str) -> str:
    return hashlib.sha256(b"cryptopulse-jwt-kid:" + secret.encode()).hexdigest()[:16]


class TokenIssuer:
    """Issues tokens with the current secret; verifies with the current or a previous one."""

    def __init__(
        self, secret: str, previous: Sequence[str], issuer: str, audience: str, ttl_s: int
    ) -> None:
        self._current = (key_id_of(secret), secret)
        self._secrets = {key_id_of(s): s for s in [*previous, secret] if s}
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def issue(
        self, key_id: str, account: str, scopes: frozenset[str], plan: str, ttl_s: int | None = None
    ) -> tuple[str, int]:
        """A signed token and its lifetime in seconds."""
        now = int(time.time())
        ttl = min(ttl_s or self.ttl_s, self.ttl_s)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": key_id,
            "acct": account,
            "scope": " ".join(sorted(scopes)),
            "plan": plan,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        kid, secret = self._current
        token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})
        return token, ttl

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        secret = self._secrets.get(str(header.get("kid")))
        if secret is None:
            raise TokenError("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_S,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not yet valid") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        return _claims(claims)


def _claims(claims: dict[str, Any]) -> TokenClaims:
    sub, account, scope, plan = (claims.get(k) for k in ("sub", "acct", "scope", "plan"))
    if not all(isinstance(v, str) for v in (sub, account, scope, plan)):
        raise TokenError("invalid token")
    return TokenClaims(
        key_id=str(sub),
        account=str(account),
        scopes=frozenset(str(scope).split()),
        plan=str(plan),
        expires_at=float(claims["exp"]),
    )
