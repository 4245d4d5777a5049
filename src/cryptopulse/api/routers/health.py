"""Liveness, readiness and Prometheus metrics (public, unversioned)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import orjson
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from cryptopulse.api.deps import ServicesDep
from cryptopulse.api.metrics import REGISTRY, FeedCollector
from cryptopulse.api.schemas import Health, Readiness
from cryptopulse.runtime import Services
from cryptopulse.sources.base import now_ms

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)

# A live feed silent for longer than this is not counted as fresh by /readyz.
FRESH_MS = 60_000


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _dependency(name: str, check: Coroutine[Any, Any, bool]) -> dict[str, Any]:
    """Ping one dependency within 1 s: {"ok", "latency_ms", "error"}."""
    started = time.perf_counter()
    error = None
    try:
        ok = bool(await asyncio.wait_for(check, timeout=1.0))
    except Exception as exc:
        log.warning("readiness: %s unreachable: %s", name, type(exc).__name__)
        ok, error = False, type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": ok, "latency_ms": latency, "error": error}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: store reachable, where data comes from, feed freshness",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(services: ServicesDep) -> Response:
    store, bus = await asyncio.gather(
        _dependency("store", services.store.ping()), _dependency("bus", services.bus.ping())
    )
    store["backend"] = services.store.dialect
    bus["backend"] = type(services.bus).__name__
    store_ok, bus_ok = bool(store["ok"]), bool(bus["ok"])
    now = now_ms()
    feeds = []
    for status in services.market.feeds.values():
        age = None if status.last_message is None else now - status.last_message
        feeds.append(
            {
                "name": status.name,
                "kind": status.kind,
                "connected": status.connected,
                "instruments": len(status.instruments),
                "last_message": status.last_message,
                "age_ms": age,
                "messages": status.messages,
                "reconnects": status.reconnects,
                "gaps": status.gaps,
                "last_error": status.last_error,
            }
        )
    fresh = any(
        s.connected and s.last_message is not None and now - s.last_message < FRESH_MS
        for s in services.market.feeds.values()
    )
    # With no feeds at all, or in an API replica (feeds run in ingest shards and are
    # shown for information), the dependencies alone decide.
    feeds_ok = fresh or not feeds or services.market.mode == "replay" or services.role == "api"
    ready = store_ok and bus_ok and feeds_ok
    body = {
        "status": "ready" if ready else "not_ready",
        "mode": services.market.mode,
        "role": services.role,
        "store": store_ok,
        "bus": bus_ok,
        "dependencies": {"store": store, "bus": bus},
        "feeds": feeds,
        "chains": _chains(services, now),
    }
    return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")


def _chains(services: Services, now: int) -> list[dict[str, Any]]:
    """The EVM chain feeds, for information: they do not decide readiness (market data and
    the stored on-chain history are served whether or not an RPC endpoint answers)."""
    if services.onchain is None:
        return []
    out = []
    for feed in services.onchain.chains.values():
        status = feed.status
        head, processed = status.head, status.processed
        out.append(
            {
                "name": feed.config.name,
                "chain_id": feed.config.chain_id,
                "connected": status.connected,
                "websocket": status.websocket,
                "head": head,
                "processed": processed,
                # Includes the confirmation depth: a caught-up feed lags by `confirmations`.
                "lag_blocks": None if head is None or processed is None else head - processed,
                "confirmations": feed.config.confirmations,
                "last_message": status.last_message,
                "age_ms": None if status.last_message is None else now - status.last_message,
                "reorgs": status.reorgs,
                "last_error": status.last_error,
            }
        )
    return out


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    FeedCollector.bind(services)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
