"""`cryptopulse train` and `cryptopulse models` (list, register an ONNX model)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cryptopulse.domain.instruments import INTERVALS
from cryptopulse.settings import Settings
from cryptopulse.store.ml import ModelInfo

__all__ = ["models_app", "train"]

out = Console()
err = Console(stderr=True)

models_app = typer.Typer(help="Prediction models: list, register ONNX.", no_args_is_help=True)


def _settings(ctx: typer.Context) -> Settings:
    url = getattr(ctx.find_root().obj, "database_url", None)
    return Settings(database_url=url) if url else Settings()


def _interval(value: str | None, settings: Settings) -> str:
    interval = value or settings.analytics_interval
    if interval not in INTERVALS:
        raise typer.BadParameter(f"one of {', '.join(INTERVALS)}", param_hint="--interval")
    return interval


def _score(info: ModelInfo, key: str) -> str:
    value = (info.scores or {}).get(key)
    return f"{value:.4f}" if isinstance(value, float) else "-"


def _print(infos: list[ModelInfo]) -> None:
    table = Table("id", "name", "v", "instrument", "interval", "h", "auc", "log loss",
                  "base-rate ll", "brier", "hit", "act", "hold")  # fmt: skip
    for i in infos:
        table.add_row(
            str(i.id), i.name, str(i.version), i.instrument or "*", i.interval, str(i.horizon),
            *(_score(i, k) for k in ("auc", "log_loss", "log_loss_base_rate", "brier",
                                     "hit_rate", "strategy_return", "hold_return")),
        )  # fmt: skip
    out.print(table)


async def _train(
    url: str, names: list[str], interval: str, horizon: int, folds: int, max_iter: int
) -> list[ModelInfo]:
    from cryptopulse.ml.jobs import train_and_register
    from cryptopulse.ml.training import TrainParams
    from cryptopulse.store.analytics import AnalyticsStore
    from cryptopulse.store.sql import SQLStore

    store = SQLStore(url)
    await store.migrate()
    params = TrainParams(horizon=horizon, folds=folds, max_iter=max_iter)
    done: list[ModelInfo] = []
    try:
        if not names:
            names = sorted(await AnalyticsStore(store).candle_instruments(interval))
        for name in names:
            try:
                done.append(await train_and_register(store, name, interval, params))
            except ValueError as exc:
                err.print(f"[yellow]skipped[/] {name}: {exc}", highlight=False)
    finally:
        await store.close()
    return done


def train(
    ctx: typer.Context,
    instrument: Annotated[
        list[str] | None, typer.Option("--instrument", "-i", help="Repeat; default: all.")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="Default: the analytics interval.")] = None,
    horizon: Annotated[int, typer.Option(min=1, help="Candles ahead to predict.")] = 12,
    folds: Annotated[int, typer.Option(min=1, help="Walk-forward test blocks.")] = 5,
    max_iter: Annotated[int, typer.Option(min=1, help="Boosting iterations.")] = 100,
) -> None:
    """Train the baseline walk-forward on stored candles and register a new version."""
    settings = _settings(ctx)
    iv = _interval(interval, settings)
    names = [n.strip() for n in instrument or []]
    infos = asyncio.run(_train(settings.database_url, names, iv, horizon, folds, max_iter))
    if not infos:
        err.print("no model trained")
        raise typer.Exit(1)
    _print(infos)


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Every registered version with its out-of-sample scores."""
    from cryptopulse.store.ml import MLStore
    from cryptopulse.store.sql import SQLStore

    async def work() -> list[ModelInfo]:
        store = SQLStore(_settings(ctx).database_url)
        await store.migrate()
        try:
            return await MLStore(store).versions()
        finally:
            await store.close()

    infos = asyncio.run(work())
    if as_json:
        from dataclasses import asdict

        out.print_json(orjson.dumps([asdict(i) for i in infos]).decode())
    else:
        _print(infos)


@models_app.command("register")
def register(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str, typer.Option(help="Model name (requests pick it by this).")],
    horizon: Annotated[int, typer.Option(min=1, help="Candles ahead it predicts.")],
    features: Annotated[
        str | None, typer.Option(help="Comma-separated input features; default: all.")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="Default: the analytics interval.")] = None,
    instrument: Annotated[str | None, typer.Option(help="Default: every instrument.")] = None,
) -> None:
    """Register an ONNX model (float32 [N, k] in, P(up) out; see docs/models.md)."""
    from cryptopulse.ml.features import FEATURES
    from cryptopulse.ml.jobs import register_onnx
    from cryptopulse.store.sql import SQLStore

    settings = _settings(ctx)
    iv = _interval(interval, settings)
    chosen = [f.strip() for f in features.split(",")] if features else list(FEATURES)

    async def work() -> ModelInfo:
        store = SQLStore(settings.database_url)
        await store.migrate()
        try:
            return await register_onnx(
                store, file.read_bytes(), name=name, interval=iv, horizon=horizon,
                features=chosen, instrument=instrument,
            )  # fmt: skip
        finally:
            await store.close()

    try:
        info = asyncio.run(work())
    except ValueError as exc:  # InvalidModel is a ValueError
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"registered {info.name} v{info.version} (id {info.id})")
