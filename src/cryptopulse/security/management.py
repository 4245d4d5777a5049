"""Creating, rotating and revoking keys, each with its audit entry (CLI and admin API)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import orjson

from cryptopulse.security.keys import generate_key, hash_key
from cryptopulse.security.scopes import parse_scopes
from cryptopulse.store.security import AuditEntry, KeyRecord, SecurityStore

__all__ = ["KeyError_", "NewKey", "create_key", "revoke_key", "rotate_key"]

_ACCOUNT = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class KeyError_(ValueError):  # noqa: N801  (KeyError is a builtin)
    """A request to manage keys that cannot be done; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str  # shown once, never stored
    record: KeyRecord


def now_ms() -> int:
    return int(time.time() * 1000)


def audit(actor: str, action: str, record: KeyRecord, **detail: object) -> AuditEntry:
    """An audit entry about a key: never the key itself, only its public id."""
    body = {"name": record.name, "scopes": record.scopes, "plan": record.plan, **detail}
    return AuditEntry(
        now_ms(), actor, action, record.account, record.key_id, orjson.dumps(body).decode()
    )


def check_account(account: str) -> str:
    if _ACCOUNT.fullmatch(account) is None:
        raise KeyError_("account: 1-64 characters of letters, digits and _ . @ -")
    return account


async def create_key(
    db: SecurityStore,
    *,
    account: str,
    name: str,
    scopes: str | list[str],
    plan: str,
    plans: set[str] | frozenset[str],
    actor: str,
    expires_at: int | None = None,
    live: bool = True,
) -> NewKey:
    try:
        scope_set = parse_scopes(scopes)
    except ValueError as exc:
        raise KeyError_(str(exc)) from None
    if plan not in plans:
        raise KeyError_(f"unknown plan {plan!r}; plans: {', '.join(sorted(plans))}")
    if not 1 <= len(name) <= 100:
        raise KeyError_("name: 1-100 characters")
    if expires_at is not None and expires_at <= now_ms():
        raise KeyError_("expires_at is in the past")
    key, public = generate_key(live)
    record = KeyRecord(
        key_id=public.key_id,
        prefix=public.prefix,
        account=check_account(account),
        name=name,
        scopes=" ".join(sorted(scope_set)),
        plan=plan,
        key_hash=hash_key(key),
        created_at=now_ms(),
        expires_at=expires_at,
    )
    await db.insert_key(record, audit(actor, "key.create", record, expires_at=expires_at))
    return NewKey(key, record)


async def rotate_key(db: SecurityStore, key_id: str, *, grace_s: int, actor: str) -> NewKey:
    """A new key with the same account, name, scopes and plan; the old one stays valid for
    `grace_s` seconds (or until its own expiry, if sooner)."""
    old = await db.get_key(key_id)
    now = now_ms()
    if old is None or not old.valid_at(now):
        raise KeyError_("no such active key")
    if old.replaced_by is not None:
        raise KeyError_("key was rotated already; rotate its replacement")
    key, public = generate_key(old.prefix == "cpk_live_")
    new = KeyRecord(
        key_id=public.key_id,
        prefix=public.prefix,
        account=old.account,
        name=old.name,
        scopes=old.scopes,
        plan=old.plan,
        key_hash=hash_key(key),
        created_at=now,
        expires_at=old.expires_at,
    )
    old_expiry = now + grace_s * 1000
    if old.expires_at is not None:
        old_expiry = min(old_expiry, old.expires_at)
    entry = audit(actor, "key.rotate", old, new_key_id=new.key_id, old_expires_at=old_expiry)
    await db.rotate_key(key_id, new, old_expiry, entry)
    return NewKey(key, new)


async def revoke_key(db: SecurityStore, key_id: str, *, actor: str) -> KeyRecord:
    old = await db.get_key(key_id)
    if old is None:
        raise KeyError_("no such key")
    if old.revoked_at is not None:
        return old
    now = now_ms()
    await db.update_key(key_id, audit(actor, "key.revoke", old), revoked_at=now)
    revoked = await db.get_key(key_id)
    assert revoked is not None
    return revoked
