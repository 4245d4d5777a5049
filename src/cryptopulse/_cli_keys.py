"""`cryptopulse keys create|list|rotate|revoke`: API keys from the command line.

A thin shell over `security/management.py`, on the store of the settings (or
`--database-url`), with `cli` as the audit actor. The key itself is printed once, on create
and rotate, and never again: the store keeps only its hash. A running server sees a
revocation within `key_cache_ttl_s` (1 s): no restart and no API call needed.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Column, Table

from cryptopulse.security.keys import KEY_ID_LEN, PREFIXES

if TYPE_CHECKING:
    from cryptopulse.security.management import NewKey
    from cryptopulse.settings import Settings
    from cryptopulse.store.security import KeyRecord, SecurityStore

__all__ = ["keys_app"]

T = TypeVar("T")

keys_app = typer.Typer(
    help="Manage API keys: create, list, rotate, revoke (the key is shown once).",
    no_args_is_help=True,
)

out = Console()
err = Console(stderr=True)

KeyIdArgument = Annotated[str, typer.Argument(help="The key's id (`keys list` shows it).")]


def _settings(ctx: typer.Context) -> Settings:
    # Imported here: `cli` imports this module, and its settings helper applies the global
    # `--database-url` option the same way for every command.
    from cryptopulse.cli import _settings as settings_of

    return settings_of(ctx)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


def _with_store(settings: Settings, work: Callable[[SecurityStore], Awaitable[T]]) -> T:
    """Run `work` on the migrated store of `settings`; KeyError_ exits 1 with its message."""
    from cryptopulse.security.management import KeyError_
    from cryptopulse.store.security import SecurityStore
    from cryptopulse.store.sql import SQLStore

    async def run() -> T:
        store = SQLStore(settings.database_url)
        try:
            await store.migrate()
            return await work(SecurityStore(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except KeyError_ as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _status(record: KeyRecord, now_ms: int) -> str:
    if record.revoked_at is not None and record.revoked_at <= now_ms:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now_ms:
        return "expired"
    if record.replaced_by is not None:
        return f"rotated (valid until {_time(record.expires_at)})"
    return "active"


def _record_json(record: KeyRecord, now_ms: int) -> dict[str, object]:
    """What may be shown of a key: everything but its hash."""
    return {
        "key_id": record.key_id,
        "public": record.prefix + record.key_id,
        "account": record.account,
        "name": record.name,
        "scopes": record.scopes.split(),
        "plan": record.plan,
        "status": _status(record, now_ms).split(" ")[0],
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used": record.last_used,
        "revoked_at": record.revoked_at,
        "replaced_by": record.replaced_by,
    }


def _print_new(new: NewKey, what: str, quiet: bool) -> None:
    if quiet:
        # Only the key on stdout, for `KEY=$(cryptopulse keys create ... --quiet)`.
        typer.echo(new.key)
        return
    record = new.record
    out.print(
        f"{what} key [bold]{record.key_id}[/] for account {record.account!r} "
        f"(plan {record.plan}, scopes {record.scopes})",
        highlight=False,
        soft_wrap=True,
    )
    if record.expires_at is not None:
        out.print(f"expires {_time(record.expires_at)}", highlight=False)
    out.print("the key (shown this once; only its hash is stored):", highlight=False)
    # Plain echo: no wrapping or markup may alter the key.
    typer.echo(new.key)


@keys_app.command("create")
def create_command(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="Owner account (letters, digits, _ . @ -).")],
    name: Annotated[str, typer.Option(help="What the key is for, 1-100 characters.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="A scope (repeat, or comma-separated): market:read, signals:read, "
            "alerts:write, webhooks:write, admin.",
        ),
    ],
    plan: Annotated[str, typer.Option(help="Plan name: free, pro, enterprise, ...")] = "free",
    expires_days: Annotated[
        float | None, typer.Option(min=0.0, help="Expire after this many days (default: never).")
    ] = None,
    test: Annotated[bool, typer.Option("--test", help="A cpk_test_ key.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key.")] = False,
) -> None:
    """Create a key and print it once."""
    from cryptopulse.security.management import create_key
    from cryptopulse.security.plans import load_plans

    settings = _settings(ctx)
    plans = set(load_plans(settings.plans))
    expires_at = None
    if expires_days is not None:
        expires_at = int((time.time() + expires_days * 86_400) * 1000)
    scopes = [part for item in scope for part in item.replace(",", " ").split()]

    async def work(db: SecurityStore) -> NewKey:
        return await create_key(
            db,
            account=account,
            name=name,
            scopes=scopes,
            plan=plan,
            plans=plans,
            actor=_actor(),
            expires_at=expires_at,
            live=not test,
        )

    _print_new(_with_store(settings, work), "created", quiet)


@keys_app.command("list")
def list_command(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account's keys.")] = None,
    all_keys: Annotated[
        bool, typer.Option("--all", help="Include revoked and expired keys.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False,
) -> None:
    """List keys (never the keys themselves: id, account, scopes, plan, status, times)."""
    settings = _settings(ctx)

    async def work(db: SecurityStore) -> list[KeyRecord]:
        return await db.list_keys(account)

    now = int(time.time() * 1000)
    records = _with_store(settings, work)
    if not all_keys:
        records = [r for r in records if r.valid_at(now)]
    if as_json:
        typer.echo(orjson.dumps([_record_json(r, now) for r in records]).decode())
        return
    table = Table("account", "name", "scopes", "plan", "status", "created", "last used")
    # The id is what rotate and revoke take: never truncated.
    table.columns.insert(0, Column("id", no_wrap=True, min_width=KEY_ID_LEN))
    for r in records:
        table.add_row(
            r.key_id,
            r.account,
            r.name,
            r.scopes,
            r.plan,
            _status(r, now),
            _time(r.created_at),
            _time(r.last_used),
        )
    out.print(table)


@keys_app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    key_id: KeyIdArgument,
    grace_s: Annotated[
        int | None,
        typer.Option(
            min=0, help="Seconds the old key stays valid (default: key_rotation_grace_s)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new key.")] = False,
) -> None:
    """Replace a key: print the new one once; the old one works for the grace period."""
    from cryptopulse.security.management import rotate_key

    settings = _settings(ctx)
    grace = settings.key_rotation_grace_s if grace_s is None else grace_s

    async def work(db: SecurityStore) -> NewKey:
        return await rotate_key(db, _key_id(key_id), grace_s=grace, actor=_actor())

    new = _with_store(settings, work)
    _print_new(new, "rotated: new", quiet)
    if not quiet:
        err.print(f"the old key {key_id} stays valid for {grace} s", highlight=False)


@keys_app.command("revoke")
def revoke_command(ctx: typer.Context, key_id: KeyIdArgument) -> None:
    """Revoke a key; running servers refuse it within key_cache_ttl_s (1 s)."""
    from cryptopulse.security.management import revoke_key

    settings = _settings(ctx)

    async def work(db: SecurityStore) -> KeyRecord:
        return await revoke_key(db, _key_id(key_id), actor=_actor())

    record = _with_store(settings, work)
    out.print(
        f"revoked {record.prefix}{record.key_id} at {_time(record.revoked_at)}", highlight=False
    )


def _key_id(text: str) -> str:
    """The id from an id or a public part (`cpk_live_<id>`), as `keys list` prints it."""
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) : len(prefix) + KEY_ID_LEN]
    return text
