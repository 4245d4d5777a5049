"""The `cryptopulse` command: serve, replay, import, migrate.

Settings come from the environment (CRYPTOPULSE_*) and `.env`; options given here win.
Heavy modules (the server, the exchange adapters) are imported inside the commands that
need them, so `cryptopulse --help` and `migrate` stay quick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.engine import make_url

from cryptopulse._cli_keys import keys_app
from cryptopulse.agents._cli import mcp_command
from cryptopulse.domain.instruments import INTERVALS, InvalidInstrument, parse_instrument
from cryptopulse.ml._cli import models_app, train
from cryptopulse.settings import Settings

if TYPE_CHECKING:
    from cryptopulse.importer import CandleImport, TradeImport
    from cryptopulse.importer import Progress as ProgressCallback
    from cryptopulse.sources.replay import ReplayCount
    from cryptopulse.store.sql import SQLStore

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(
    name="cryptopulse",
    help="Self-hosted crypto market-data and signals API.",
    no_args_is_help=True,
    add_completion=False,
)
import_app = typer.Typer(
    help="Import history from CSV files (plain or gzip).", no_args_is_help=True
)
app.add_typer(import_app, name="import")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.command("train")(train)
app.command("mcp")(mcp_command)

out = Console()
err = Console(stderr=True)

# Files smaller than this import in about a second: no progress bar needed.
_PROGRESS_MIN_BYTES = 1 << 20

ExistingFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, resolve_path=True)
]
InstrumentOption = Annotated[
    str, typer.Option("--instrument", "-i", help="Venue instrument, EXCHANGE:BASE-QUOTE.")
]


@dataclass(slots=True)
class _Global:
    database_url: str | None = None


@app.callback()
def main(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Store URL (overrides CRYPTOPULSE_DATABASE_URL), e.g. "
            "sqlite+aiosqlite:///./data/cryptopulse.db or postgresql+asyncpg://...",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Self-hosted crypto market-data and signals API."""
    ctx.obj = _Global(database_url)


def _settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the environment, with the global and the command's options on top."""
    options: _Global = ctx.obj if isinstance(ctx.obj, _Global) else _Global()
    if options.database_url:
        overrides["database_url"] = options.database_url
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            err.print(f"[red]error:[/] setting {field}: {error['msg']}", soft_wrap=True)
        raise typer.Exit(2) from None


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _instrument(text: str) -> str:
    from cryptopulse.importer import venue_instrument

    try:
        return venue_instrument(text)
    except InvalidInstrument as exc:
        raise typer.BadParameter(str(exc), param_hint="--instrument") from None


# --- serve, migrate --------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Option(help="auto (live, else simulator), live, sim, or replay:PATH."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    instruments: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated venue instruments, e.g. coinbase:BTC-USD,binance:ETH-USDT."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="API worker processes (scale-out: with a redis:// bus URL)."),
    ] = None,
) -> None:
    """Run sources, pipeline and API in one process; with a redis:// bus, the API only
    (sources run in `cryptopulse ingest` shards)."""
    names = _instrument_list(instruments)
    settings = _settings(
        ctx, source=source, host=host, port=port, instruments=names, workers=workers
    )
    from cryptopulse.server import run

    run(settings)


def _instrument_list(instruments: str | None) -> list[str] | None:
    if instruments is None:
        return None
    names = [part.strip() for part in instruments.split(",") if part.strip()]
    for name in names:
        try:
            parse_instrument(name)
        except InvalidInstrument as exc:
            raise typer.BadParameter(str(exc), param_hint="--instruments") from None
    return names


@app.command()
def ingest(
    ctx: typer.Context,
    shard: Annotated[
        str, typer.Option(help="i/n: this process ingests shard i (0-based) of n.")
    ] = "0/1",
    source: Annotated[
        str | None,
        typer.Option(help="auto (live, else simulator), live, sim, or replay:PATH."),
    ] = None,
    instruments: Annotated[
        str | None,
        typer.Option(help="Comma-separated venue instruments (the shard takes its part)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port of /healthz, /readyz and /metrics.")
    ] = None,
) -> None:
    """Run sources and pipeline for one shard: write the store, publish to the bus."""
    from cryptopulse.sharding import parse_shard

    try:
        parse_shard(shard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None
    names = _instrument_list(instruments)
    settings = _settings(ctx, shard=shard, source=source, instruments=names, ingest_port=port)
    from cryptopulse.processes.ingest import run_ingest

    run_ingest(settings)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the store's schema to the newest revision."""
    from cryptopulse.store import migrate as migrate_store

    settings = _settings(ctx)
    migrate_store(settings.database_url)
    out.print(f"store at {_safe_url(settings.database_url)} is up to date")


@app.command()
def deliver(ctx: typer.Context) -> None:
    """Run the alert delivery worker alone: outbox relay and webhook dispatcher, until
    SIGTERM (set CRYPTOPULSE_DELIVERY_EMBEDDED=false on the serving processes)."""
    from cryptopulse.delivery.worker import run_deliver

    run_deliver(_settings(ctx))


# --- replay ----------------------------------------------------------------------------


def _speed(text: str) -> float | None:
    if text.lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise typer.BadParameter("a positive number, or max", param_hint="--speed")
    return value


async def _replay(
    url: str, paths: Sequence[Path], speed: float | None
) -> tuple[dict[str, ReplayCount], dict[str, int]]:
    from cryptopulse.importer import StoreFeed, count_candles
    from cryptopulse.sources.base import now_ms
    from cryptopulse.sources.replay import replay_files
    from cryptopulse.store.sql import SQLStore

    store = SQLStore(url)
    try:
        await store.migrate()
        feed = StoreFeed(store)
        counts = await replay_files(paths, feed, speed)
        await feed.finish()
        await store.record_instruments(sorted(counts), "replay", now_ms())
        candles = {name: sum((await count_candles(store, name)).values()) for name in counts}
    finally:
        await store.close()
    return counts, candles


@app.command()
def replay(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Capture files."),
    ],
    speed: Annotated[
        str, typer.Option(help="max (as fast as possible), or N times the recorded pace.")
    ] = "max",
) -> None:
    """Replay recorded exchange traffic into the store, then print what each instrument got."""
    pace = _speed(speed)
    settings = _settings(ctx)
    counts, candles = _run(_replay(settings.database_url, paths, pace))
    table = Table(title=f"replayed into {_safe_url(settings.database_url)}")
    for column in ("instrument", "trades", "tickers", "candles"):
        table.add_column(column, justify="left" if column == "instrument" else "right")
    for name in sorted(counts):
        count = counts[name]
        table.add_row(name, str(count.trades), str(count.tickers), str(candles[name]))
    out.print(table)


# --- import ----------------------------------------------------------------------------


def _with_progress(path: Path, work: Callable[[ProgressCallback], Coroutine[Any, Any, T]]) -> T:
    """Run `work(progress_callback)` with a bytes progress bar for large files."""
    from cryptopulse.importer import ImportFileError

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    large = path.stat().st_size >= _PROGRESS_MIN_BYTES
    with Progress(*columns, console=err, transient=True, disable=not large) as bar:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            return _run(work(report))
        except ImportFileError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            err.print("nothing was imported")
            raise typer.Exit(1) from None


async def _migrated_store(url: str) -> SQLStore:
    from cryptopulse.store.sql import SQLStore

    store = SQLStore(url)
    await store.migrate()
    return store


@import_app.command("trades")
def import_trades_command(
    ctx: typer.Context, file: ExistingFile, instrument: InstrumentOption
) -> None:
    """Import trades (columns time_ms,trade_id,side,price,amount); builds every candle interval."""
    from cryptopulse.importer import import_trades

    name = _instrument(instrument)
    url = _settings(ctx).database_url

    async def work(progress: ProgressCallback) -> TradeImport:
        store = await _migrated_store(url)
        try:
            return await import_trades(store, file, name, progress=progress)
        finally:
            await store.close()

    result = _with_progress(file, work)
    out.print(
        f"{result.instrument}: {result.trades} trades imported from {result.rows} rows "
        f"({result.duplicates} duplicates, {result.late} late)"
    )
    table = Table("interval", "candles in store")
    for interval, count in result.candles.items():
        table.add_row(interval, str(count))
    out.print(table)


@import_app.command("candles")
def import_candles_command(
    ctx: typer.Context,
    file: ExistingFile,
    instrument: InstrumentOption,
    interval: Annotated[str, typer.Option(help=f"One of {', '.join(INTERVALS)}.")],
) -> None:
    """Import candles (columns open_time_ms,open,high,low,close,volume) of one interval."""
    from cryptopulse.importer import import_candles

    name = _instrument(instrument)
    if interval not in INTERVALS:
        raise typer.BadParameter(f"one of {', '.join(INTERVALS)}", param_hint="--interval")
    url = _settings(ctx).database_url

    async def work(progress: ProgressCallback) -> CandleImport:
        store = await _migrated_store(url)
        try:
            return await import_candles(store, file, name, interval, progress=progress)
        finally:
            await store.close()

    result = _with_progress(file, work)
    out.print(f"{result.instrument}: {result.candles} {result.interval} candles upserted")
