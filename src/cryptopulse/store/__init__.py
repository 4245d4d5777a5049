"""History store: SQLAlchemy Core over SQLite (default) or PostgreSQL, Alembic migrations."""

from cryptopulse.store.sql import InstrumentRow, SQLStore, migrate
from cryptopulse.store.writer import StoreWriter

__all__ = ["InstrumentRow", "SQLStore", "StoreWriter", "migrate"]
