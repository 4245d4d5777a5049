"""Migrations when several processes start at once (replicas, shards): one runs them, the
others wait on a PostgreSQL advisory lock and then find the schema current."""

from __future__ import annotations

from sqlalchemy import text

from cryptopulse.store.sql import SQLStore

_LOCK_KEY = 0x6370_6D69_6772  # "cpmigr"


async def migrate_locked(store: SQLStore) -> None:
    """`store.migrate()`, serialized across processes on PostgreSQL."""
    if store.dialect != "postgresql":
        await store.migrate()
        return
    async with store.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            await store.migrate()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
