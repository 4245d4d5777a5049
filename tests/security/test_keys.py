"""Key format: prefix, public id, checksum; only the hash is comparable."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from cryptopulse.security.keys import KEY_PATTERN, generate_key, hash_key, parse_key
from cryptopulse.security.plans import DEFAULT_PLANS, load_plans


def test_generated_keys_parse_and_carry_their_public_part() -> None:
    key, public = generate_key(live=True)
    assert key.startswith("cpk_live_") and KEY_PATTERN.fullmatch(key)
    assert parse_key(key) == public
    assert public.public == key[: len(public.public)]
    test_key, _ = generate_key(live=False)
    assert test_key.startswith("cpk_test_")
    assert hash_key(key) != hash_key(test_key) and len(hash_key(key)) == 64


def test_checksum_catches_a_typo() -> None:
    key, _ = generate_key()
    i = 20
    typo = key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1 :]
    assert parse_key(typo) is None
    assert zlib.crc32(key.encode()) != zlib.crc32(typo.encode())


@given(st.text(max_size=80))
def test_random_text_is_never_a_key(text: str) -> None:
    assert parse_key(text) is None


def test_plans_override_fields_and_add_plans() -> None:
    plans = load_plans({"pro": {"rpm": 5}, "tiny": {"burst": 1}})
    assert plans["pro"].rpm == 5 and plans["pro"].burst == DEFAULT_PLANS["pro"].burst
    assert plans["tiny"].burst == 1 and plans["tiny"].rpm == DEFAULT_PLANS["free"].rpm
