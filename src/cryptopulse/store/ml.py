"""The model registry: versioned prediction models with their windows and scores.

Migration 0007 creates the table on SQLite and PostgreSQL. A model is never updated in
place: training or uploading again adds a version, so a score in `/v1/models` always
belongs to the bytes that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from cryptopulse.store.sql import SQLStore
from cryptopulse.store.tables import metadata

__all__ = ["MLStore", "ModelInfo", "NewModel", "ml_models"]

ml_models = Table(
    "ml_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("instrument", String(64), nullable=True),
    Column("interval", String(8), nullable=False),
    Column("horizon", Integer, nullable=False),
    Column("feature_set", String(32), nullable=False),
    Column("features", Text, nullable=False),
    Column("window_start", BigInteger, nullable=True),
    Column("window_end", BigInteger, nullable=True),
    Column("scores", Text, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("onnx", LargeBinary, nullable=False),
    UniqueConstraint("name", "version", name="uq_ml_models_name"),
    Index("ix_ml_models_lookup", "name", "interval", "instrument"),
)

_INFO = [c for c in ml_models.c if c.name != "onnx"]


@dataclass(frozen=True, slots=True)
class NewModel:
    """A model to register; `instrument` None serves every instrument of `interval`."""

    name: str
    kind: str  # "builtin" (trained here) or "onnx" (brought by the user)
    instrument: str | None
    interval: str
    horizon: int
    feature_set: str
    features: tuple[str, ...]
    onnx: bytes
    created: int
    window_start: int | None = None
    window_end: int | None = None
    scores: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A registered model without its bytes."""

    id: int
    name: str
    version: int
    kind: str
    instrument: str | None
    interval: str
    horizon: int
    feature_set: str
    features: tuple[str, ...]
    window_start: int | None
    window_end: int | None
    scores: dict[str, Any] | None
    created: int


def _info(row: Any) -> ModelInfo:
    m = row._mapping
    return ModelInfo(
        id=m["id"],
        name=m["name"],
        version=m["version"],
        kind=m["kind"],
        instrument=m["instrument"],
        interval=m["interval"],
        horizon=m["horizon"],
        feature_set=m["feature_set"],
        features=tuple(orjson.loads(m["features"])),
        window_start=m["window_start"],
        window_end=m["window_end"],
        scores=orjson.loads(m["scores"]) if m["scores"] is not None else None,
        created=m["created"],
    )


class MLStore:
    """Queries of the model registry over an `SQLStore`."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    async def add(self, model: NewModel, attempts: int = 5) -> ModelInfo:
        """Store `model` as the next version of its name (retried if two add at once)."""
        values = {
            "name": model.name,
            "kind": model.kind,
            "instrument": model.instrument,
            "interval": model.interval,
            "horizon": model.horizon,
            "feature_set": model.feature_set,
            "features": orjson.dumps(list(model.features)).decode(),
            "window_start": model.window_start,
            "window_end": model.window_end,
            "scores": orjson.dumps(model.scores).decode() if model.scores is not None else None,
            "created": model.created,
            "onnx": model.onnx,
        }
        c = ml_models.c
        for attempt in range(attempts):
            try:
                async with self.store.engine.begin() as conn:
                    top = select(func.max(c.version)).where(c.name == model.name)
                    version = int((await conn.execute(top)).scalar_one() or 0) + 1
                    result = await conn.execute(
                        ml_models.insert().values(version=version, **values).returning(c.id)
                    )
                    model_id = int(result.scalar_one())
                return await self._require(model_id)
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    async def _require(self, model_id: int) -> ModelInfo:
        found = await self.get(model_id)
        if found is None:
            raise LookupError(model_id)
        return found[0]

    async def get(self, model_id: int) -> tuple[ModelInfo, bytes] | None:
        """A model and its ONNX bytes."""
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(ml_models).where(ml_models.c.id == model_id))).first()
        return (_info(row), bytes(row._mapping["onnx"])) if row is not None else None

    async def versions(self, name: str | None = None) -> list[ModelInfo]:
        """Every version (without the bytes), newest first."""
        query = select(*_INFO).order_by(ml_models.c.id.desc())
        if name is not None:
            query = query.where(ml_models.c.name == name)
        async with self.store.engine.connect() as conn:
            return [_info(row) for row in await conn.execute(query)]

    async def latest_id(self) -> int:
        """The newest model id (0 when none): a cheap check for new versions."""
        async with self.store.engine.connect() as conn:
            return int((await conn.execute(select(func.max(ml_models.c.id)))).scalar_one() or 0)

    async def current(self) -> list[ModelInfo]:
        """The newest version of each (name, instrument, interval): what is served."""
        newest: dict[tuple[str, str | None, str], ModelInfo] = {}
        for info in await self.versions():
            newest.setdefault((info.name, info.instrument, info.interval), info)
        return sorted(newest.values(), key=lambda m: m.id)

    async def get_many(self, ids: Sequence[int]) -> dict[int, bytes]:
        """The ONNX bytes of several models."""
        if not ids:
            return {}
        query = select(ml_models.c.id, ml_models.c.onnx).where(ml_models.c.id.in_(list(ids)))
        async with self.store.engine.connect() as conn:
            return {int(r[0]): bytes(r[1]) for r in await conn.execute(query)}
