"""Predictions: P(up) per instrument from the registered models, and the models' scores."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES
from cryptopulse.api.deps import ServicesDep, require_scope
from cryptopulse.api.errors import PROBLEM_RESPONSES, ProblemError, not_found
from cryptopulse.api.ml_schemas import (
    Interval,
    ModelList,
    PredictionList,
    PredictionOut,
    PredictionRequest,
)
from cryptopulse.api.routers._analytics import InstrumentPath, json_response
from cryptopulse.domain.instruments import InvalidInstrument, parse_instrument
from cryptopulse.ml.batcher import BatchFailed, Overloaded
from cryptopulse.ml.service import NoPrediction, Prediction, PredictionService
from cryptopulse.runtime import Services
from cryptopulse.store.ml import ModelInfo

router = APIRouter(
    prefix="/v1",
    tags=["predictions"],
    responses={
        **PROBLEM_RESPONSES,
        **AUTH_RESPONSES,
        503: {
            **PROBLEM_RESPONSES[503],
            "description": "Predictions are off, or the queue is full (with Retry-After)",
        },
    },
    dependencies=[require_scope("signals:read")],
)

ModelQuery = Annotated[str | None, Query(max_length=64, description="default: `baseline`")]


def _service(services: Services) -> PredictionService:
    if services.predictions is None:
        raise ProblemError(
            503, "predictions-disabled", "Service Unavailable", "predictions are off"
        )
    return services.predictions


def _instrument(text: str) -> str:
    try:
        return str(parse_instrument(text))
    except InvalidInstrument as exc:
        raise not_found(str(exc)) from None


async def _predict(
    service: PredictionService, instrument: str, interval: str, model: str | None
) -> Prediction:
    try:
        return await service.predict(instrument, interval, model)
    except NoPrediction as exc:
        raise not_found(str(exc)) from None
    except Overloaded as exc:
        raise ProblemError(
            503,
            "overloaded",
            "Service Unavailable",
            "the prediction queue is full; retry shortly",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except BatchFailed:
        raise ProblemError(
            500, "model-error", "Internal Server Error", "the model failed on this batch"
        ) from None


@router.post("/predictions", response_model=PredictionList, summary="Predict instruments")
async def post_predictions(services: ServicesDep, body: PredictionRequest) -> Response:
    """P(up over the model's horizon) for each instrument, in request order. Concurrent
    requests share one batched model call."""
    service = _service(services)
    interval = body.interval or services.settings.analytics_interval
    names = [_instrument(text) for text in body.instruments]
    results = await asyncio.gather(
        *(_predict(service, name, interval, body.model) for name in names)
    )
    return json_response({"data": [r.body() for r in results]})


@router.get(
    "/predictions/{instrument}", response_model=PredictionOut, summary="Predict one instrument"
)
async def get_prediction(
    services: ServicesDep,
    instrument: InstrumentPath,
    interval: Annotated[Interval | None, Query(description="default: analytics interval")] = None,
    model: ModelQuery = None,
) -> Response:
    """P(up over the model's horizon) after the newest closed candle of `instrument`."""
    service = _service(services)
    name = _instrument(instrument)
    result = await _predict(service, name, interval or services.settings.analytics_interval, model)
    return json_response(result.body())


def _model_body(info: ModelInfo, serving: bool) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "version": info.version,
        "kind": info.kind,
        "instrument": info.instrument,
        "interval": info.interval,
        "horizon": info.horizon,
        "feature_set": info.feature_set,
        "features": list(info.features),
        "window_start": info.window_start,
        "window_end": info.window_end,
        "created": info.created,
        "serving": serving,
        "scores": info.scores,
    }


@router.get("/models", response_model=ModelList, summary="Prediction models and their scores")
async def list_models(
    services: ServicesDep,
    name: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Every registered version, newest first, with its training window and out-of-sample
    scores as measured, whether or not they beat chance (compare `log_loss` with
    `log_loss_base_rate`, and `auc` with 0.5)."""
    service = _service(services)
    infos = await service.registry.versions(name)
    return json_response({"data": [_model_body(i, i.id in service.models) for i in infos]})
