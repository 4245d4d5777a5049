"""Tables and queries of access control: API keys, daily usage, the audit log.

Only a key's SHA-256 and its public part are stored; times are ms since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
    update,
)

from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import metadata

__all__ = ["AuditEntry", "KeyRecord", "SecurityStore", "api_keys", "api_usage", "audit_log"]

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("plan", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("last_used", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("replaced_by", String(16), nullable=True),
    Index("ix_api_keys_account", "account"),
)

api_usage = Table(
    "api_usage",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD (UTC): sorts as text
    Column("requests", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("account", String(64), nullable=True),
    Column("target", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_audit_log_time", "time"),
)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    prefix: str
    account: str
    name: str
    scopes: str  # space separated
    plan: str
    key_hash: str
    created_at: int
    expires_at: int | None = None
    last_used: int | None = None
    revoked_at: int | None = None
    replaced_by: str | None = None

    def valid_at(self, now_ms: int) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now_ms:
            return False
        return self.expires_at is None or now_ms < self.expires_at


@dataclass(frozen=True, slots=True)
class AuditEntry:
    time: int
    actor: str
    action: str
    account: str | None
    target: str | None
    detail: str  # JSON


class SecurityStore:
    """Queries over the security tables, sharing the market store's engine."""

    def __init__(self, store: SQLStore) -> None:
        self._store = store
        self._engine = store.engine

    async def insert_key(self, record: KeyRecord, audit: AuditEntry | None = None) -> None:
        async with self._store._write_lock, self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**_asdict(record)))
            if audit is not None:
                await conn.execute(audit_log.insert().values(**_asdict(audit)))

    async def get_key(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
        return KeyRecord(*row) if row is not None else None

    async def list_keys(self, account: str | None = None) -> list[KeyRecord]:
        query = select(api_keys).order_by(api_keys.c.account, api_keys.c.created_at)
        if account is not None:
            query = query.where(api_keys.c.account == account)
        async with self._engine.connect() as conn:
            return [KeyRecord(*row) for row in await conn.execute(query)]

    async def count_keys(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()
            )

    async def update_key(self, key_id: str, audit: AuditEntry | None, **values: Any) -> bool:
        """Set columns of one key (and write the audit entry in the same transaction)."""
        stmt = update(api_keys).where(api_keys.c.key_id == key_id).values(**values)
        async with self._store._write_lock, self._engine.begin() as conn:
            found = (await conn.execute(stmt)).rowcount > 0
            if found and audit is not None:
                await conn.execute(audit_log.insert().values(**_asdict(audit)))
        return found

    async def rotate_key(
        self, key_id: str, new: KeyRecord, old_expires_at: int, audit: AuditEntry
    ) -> None:
        """Insert `new` and let the old key expire at `old_expires_at`, atomically."""
        stmt = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .values(expires_at=old_expires_at, replaced_by=new.key_id)
        )
        async with self._store._write_lock, self._engine.begin() as conn:
            await conn.execute(stmt)
            await conn.execute(api_keys.insert().values(**_asdict(new)))
            await conn.execute(audit_log.insert().values(**_asdict(audit)))

    async def add_usage(
        self, counts: Mapping[tuple[str, str], int], last_used: Mapping[str, int]
    ) -> None:
        """Add request counts per (key, day) and record last-used times, in one transaction."""
        if not counts and not last_used:
            return
        values = [{"key_id": k, "day": d, "requests": n} for (k, d), n in counts.items()]
        insert = self._store._insert(api_usage)
        upsert = insert.on_conflict_do_update(
            index_elements=["key_id", "day"],
            set_={"requests": api_usage.c.requests + insert.excluded.requests},
        )
        async with self._store._write_lock, self._engine.begin() as conn:
            if values:
                await conn.execute(upsert, values)
            for key_id, time in last_used.items():
                await conn.execute(
                    update(api_keys).where(api_keys.c.key_id == key_id).values(last_used=time)
                )

    async def usage(self, key_ids: Sequence[str], since_day: str) -> dict[str, int]:
        """Requests per day (YYYY-MM-DD) since `since_day`, summed over `key_ids`."""
        if not key_ids:
            return {}
        u = api_usage.c
        query = (
            select(u.day, func.sum(u.requests))
            .where(u.key_id.in_(list(key_ids)), u.day >= since_day)
            .group_by(u.day)
            .order_by(u.day)
        )
        async with self._engine.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._store._write_lock, self._engine.begin() as conn:
            await conn.execute(audit_log.insert().values(**_asdict(entry)))

    async def list_audit(self, account: str | None = None, limit: int = 100) -> list[AuditEntry]:
        a = audit_log.c
        query = select(a.time, a.actor, a.action, a.account, a.target, a.detail)
        if account is not None:
            query = query.where(a.account == account)
        query = query.order_by(a.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [AuditEntry(*row) for row in await conn.execute(query)]


def _asdict(record: KeyRecord | AuditEntry) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}
