"""API key format: `cpk_live_` / `cpk_test_`, a public id, a random secret, a CRC32 checksum.

    cpk_live_ 3kT9aQ2xLm8Z 7Jd0...(32 random base62)... 0F3kQb
    prefix    id (12)      secret (32)                  crc32 of everything before (6)

As with GitHub's tokens, the checksum lets secret scanners recognise a leaked key without
asking us, and lets the server refuse a mistyped key without a store lookup. The server
keeps only `sha256(key)` and the public part (`prefix + id`); a key has ~190 bits of
randomness, so a fast hash is enough (no password KDF is needed for a random secret).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

__all__ = [
    "KEY_ID_LEN",
    "KEY_PATTERN",
    "PREFIXES",
    "ParsedKey",
    "generate_key",
    "hash_key",
    "looks_like_key",
    "parse_key",
]

PREFIXES = ("cpk_live_", "cpk_test_")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_LEN = 12  # the public id after the prefix
_ID_LEN = KEY_ID_LEN
_SECRET_LEN = 32
_CRC_LEN = 6
# For secret scanners and log redaction: the whole key, anchored on the prefix.
_BODY_LEN = _ID_LEN + _SECRET_LEN + _CRC_LEN
KEY_PATTERN = re.compile(rf"cpk_(?:live|test)_[0-9A-Za-z]{{{_BODY_LEN}}}")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    prefix: str
    key_id: str

    @property
    def public(self) -> str:
        """What may be shown and logged: `cpk_live_<id>`."""
        return self.prefix + self.key_id


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode()), _CRC_LEN)


def generate_key(live: bool = True, key_id: str | None = None) -> tuple[str, ParsedKey]:
    """A new key and its public part. The key itself is shown once and never stored."""
    prefix = PREFIXES[0] if live else PREFIXES[1]
    key_id = key_id or _random(_ID_LEN)
    body = prefix + key_id + _random(_SECRET_LEN)
    return body + _checksum(body), ParsedKey(prefix, key_id)


def looks_like_key(text: str) -> bool:
    return text.startswith(PREFIXES)


def parse_key(text: str) -> ParsedKey | None:
    """The public part of a well-formed key with a valid checksum, else None (no lookup)."""
    if KEY_PATTERN.fullmatch(text) is None:
        return None
    body, crc = text[:-_CRC_LEN], text[-_CRC_LEN:]
    if not hmac.compare_digest(_checksum(body), crc):
        return None
    prefix = text[:9]
    return ParsedKey(prefix, text[9 : 9 + _ID_LEN])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
