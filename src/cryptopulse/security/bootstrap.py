"""The first admin key, so that `make serve` works for a newcomer with credentials required.

On a start with no key in the store, outside production, an admin key of the `operator`
account is created, printed once on stderr (the console, not the logging system, so log
shipping never carries it) and written to the first-key file with mode 0600.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from cryptopulse.security.management import create_key
from cryptopulse.security.scopes import ALL_SCOPES
from cryptopulse.settings import Settings
from cryptopulse.store.security import SecurityStore

__all__ = ["OPERATOR_ACCOUNT", "bootstrap_first_key", "first_key_path"]

log = logging.getLogger(__name__)

# The account whose admin keys manage every account (see docs/security.md).
OPERATOR_ACCOUNT = "operator"


def first_key_path(settings: Settings) -> Path:
    if settings.first_key_file:
        return Path(settings.first_key_file)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database or "").parent / "first-key.txt"
    return Path("data") / "first-key.txt"


async def bootstrap_first_key(
    settings: Settings, db: SecurityStore, plans: set[str]
) -> Path | None:
    """Create the first admin key if there is none; return the file it was written to."""
    if not settings.bootstrap_key or settings.environment == "production":
        return None
    if await db.count_keys() > 0:
        return None
    new = await create_key(
        db,
        account=OPERATOR_ACCOUNT,
        name="first admin key",
        scopes=sorted(ALL_SCOPES),
        plan="enterprise" if "enterprise" in plans else sorted(plans)[0],
        plans=plans,
        actor="bootstrap",
    )
    path = first_key_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(new.key + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
    sys.stderr.write(
        f"\n  First admin key (shown once, also in {path}, mode 0600):\n  {new.key}\n\n"
    )
    log.warning(
        "created the first admin key %s%s; it is in %s",
        new.record.prefix,
        new.record.key_id,
        path,
    )
    return path
