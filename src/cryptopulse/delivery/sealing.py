"""Endpoint secrets at rest. HMAC signing needs the secret itself (a hash cannot sign), so
it is stored sealed: AES-256-GCM under a key derived from `CRYPTOPULSE_WEBHOOK_SECRETS_KEY`
(`v1:` + base64(nonce || ciphertext)). Without that setting secrets are stored as they are
(`plain:`), protected only by the database's own access control: docs/alerts.md says so.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SealError", "seal", "unseal"]

_AAD = b"cryptopulse webhook secret"


class SealError(Exception):
    """A sealed secret cannot be opened (no key, or another key sealed it)."""


def _key(passphrase: str) -> bytes:
    return hashlib.sha256(b"cryptopulse-webhooks:" + passphrase.encode()).digest()


def seal(secret: str, passphrase: str | None) -> str:
    if not passphrase:
        return "plain:" + secret
    nonce = os.urandom(12)
    sealed = AESGCM(_key(passphrase)).encrypt(nonce, secret.encode(), _AAD)
    return "v1:" + base64.b64encode(nonce + sealed).decode()


def unseal(stored: str, passphrase: str | None) -> str:
    if stored.startswith("plain:"):
        return stored.removeprefix("plain:")
    if not stored.startswith("v1:") or not passphrase:
        raise SealError("the secret is sealed and CRYPTOPULSE_WEBHOOK_SECRETS_KEY is not set")
    raw = base64.b64decode(stored.removeprefix("v1:"))
    try:
        return AESGCM(_key(passphrase)).decrypt(raw[:12], raw[12:], _AAD).decode()
    except InvalidTag:
        raise SealError("the secret was sealed under another key") from None
