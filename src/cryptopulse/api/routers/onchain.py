"""On-chain insights: chains, chain metrics, token metrics, token transfers."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from cryptopulse.api._auth import AUTH_RESPONSES
from cryptopulse.api.deps import ServicesDep, require_scope
from cryptopulse.api.errors import PROBLEM_RESPONSES, invalid_field, not_found
from cryptopulse.api.onchain_schemas import (
    ChainList,
    ChainMetricsPage,
    OnchainTokenPage,
    TokenTransferPage,
)
from cryptopulse.onchain import ChainFeed, OnchainService, _payloads
from cryptopulse.runtime import Services
from cryptopulse.settings import TokenConfig

router = APIRouter(
    prefix="/v1/onchain",
    tags=["on-chain"],
    responses={**PROBLEM_RESPONSES, **AUTH_RESPONSES},
    dependencies=[require_scope("market:read")],
)

MAX_PAGE = 1000
Interval = Literal["block", "1h", "1d"]
ChainPath = Annotated[str, Path(description="chain name from /v1/onchain/chains", max_length=32)]
TokenPath = Annotated[
    str, Path(description="contract address or symbol of a tracked token", max_length=42)
]
# Past this an int no longer fits the store's 64-bit columns (a 500 instead of a 422).
MAX_TIME = 2**53 - 1
Start = Annotated[
    int | None, Query(ge=0, le=MAX_TIME, description="first time / open_time, ms (inclusive)")
]
End = Annotated[
    int | None, Query(ge=0, le=MAX_TIME, description="last time / open_time, ms (inclusive)")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
CursorQuery = Annotated[str | None, Query(max_length=200)]


class JSONBytes(Response):
    media_type = "application/json"


def _json(body: Any) -> Response:
    return JSONBytes(orjson.dumps(body))


def _service(services: Services) -> OnchainService:
    if services.onchain is None:
        raise not_found("no chain is configured (CRYPTOPULSE_ONCHAIN_CHAINS)")
    return services.onchain


def _feed(services: Services, chain: str) -> ChainFeed:
    feed = _service(services).chains.get(chain.lower())
    if feed is None:
        raise not_found(f"unknown chain {chain!r}; see /v1/onchain/chains")
    return feed


def _token(feed: ChainFeed, text: str) -> TokenConfig:
    wanted = text.lower()
    for token in feed.config.tokens:
        if wanted in (token.address, token.symbol.lower()):
            return token
    raise not_found(f"{text!r} is not a tracked token on {feed.config.name}")


def _encode(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def _decode(cursor: str, keys: tuple[str, ...]) -> dict[str, int]:
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise invalid_field("cursor", "not a cursor this API issued") from None
    if not isinstance(body, dict) or any(
        not isinstance(body.get(k), int) or isinstance(body.get(k), bool) for k in keys
    ):
        raise invalid_field("cursor", "not a cursor this API issued")
    if any(abs(body[k]) > MAX_TIME for k in keys):  # beyond the 64-bit columns: forged
        raise invalid_field("cursor", "not a cursor this API issued")
    return {k: int(body[k]) for k in keys}


def _window(
    start: int | None, end: int | None, cursor: str | None
) -> tuple[int | None, int | None, bool]:
    """(start, end, descending) of a time-paged query, as for candles: without `start` the
    newest page up to `end`, paging back; with it, paging forward."""
    if start is not None and end is not None and start > end:
        raise invalid_field("start", "start must not be after end")
    descending = start is None
    if cursor is not None:
        position = _decode(cursor, ("p", "d"))
        descending = position["d"] == 1
        if descending:
            end = position["p"] - 1
        else:
            start = position["p"] + 1
    return start, end, descending


def _page(rows: list[Any], limit: int, descending: bool, key: str) -> tuple[list[Any], str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    if not (more and rows):
        return rows, None
    edge = rows[0] if descending else rows[-1]
    return rows, _encode({"p": getattr(edge, key), "d": int(descending)})


@router.get("/chains", response_model=ChainList, summary="Followed EVM chains")
async def list_chains(services: ServicesDep) -> Response:
    """Each configured chain with its feed status and tracked tokens (none by default)."""
    chains = services.onchain.chains.values() if services.onchain is not None else []
    return _json({"data": [_chain_body(feed) for feed in chains]})


def _chain_body(feed: ChainFeed) -> dict[str, Any]:
    config, status = feed.config, feed.status
    tokens = []
    for t in config.tokens:
        supply = feed.supplies.get(t.address)
        tokens.append(
            {
                "symbol": t.symbol,
                "address": t.address,
                "decimals": t.decimals,
                "whale_threshold": t.whale_threshold,
                "total_supply": supply.total_supply if supply else None,
                "supply_block": supply.block_number if supply else None,
            }
        )
    return {
        "chain": config.name,
        "chain_id": config.chain_id,
        "confirmations": config.confirmations,
        "connected": status.connected,
        "websocket": status.websocket,
        "head": status.head,
        "processed": status.processed,
        "last_block_time": status.last_block_time,
        "reorgs": status.reorgs,
        "orphaned_blocks": status.orphaned,
        "tokens": tokens,
        "exchanges": len(config.exchanges),
        "last_error": status.last_error,
    }


@router.get("/{chain}/metrics", response_model=ChainMetricsPage, summary="Chain activity")
async def chain_metrics(
    services: ServicesDep,
    chain: ChainPath,
    interval: Annotated[Interval, Query(description="per block, hour or day")] = "1h",
    start: Start = None,
    end: End = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Transactions, active addresses, gas, fees and deployments, oldest first."""
    feed = _feed(services, chain)
    store = _service(services).store
    start, end, descending = _window(start, end, cursor)
    name = feed.config.name
    if interval == "block":
        blocks = await store.get_blocks(
            name, start=start, end=end, limit=limit + 1, descending=descending
        )
        rows, next_cursor = _page(blocks, limit, descending, "time")
        data = [_payloads.block_body(b) for b in rows]
    else:
        found = await store.get_rollups(
            name, interval, start=start, end=end, limit=limit + 1, descending=descending
        )
        rows, next_cursor = _page(found, limit, descending, "open_time")
        data = [_payloads.rollup_body(r) for r in rows]
    return _json({"chain": name, "interval": interval, "data": data, "next_cursor": next_cursor})


@router.get(
    "/{chain}/tokens/{token}/metrics", response_model=OnchainTokenPage, summary="Token activity"
)
async def token_metrics(
    services: ServicesDep,
    chain: ChainPath,
    token: TokenPath,
    interval: Annotated[Interval, Query(description="per block, hour or day")] = "1h",
    start: Start = None,
    end: End = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Transfers, volume, unique senders/receivers, exchange flows and whale counts, with
    the on-chain total supply and FDV at the latest `SYMBOL-USD` price."""
    feed = _feed(services, chain)
    tracked = _token(feed, token)
    store = _service(services).store
    start, end, descending = _window(start, end, cursor)
    name = feed.config.name
    if interval == "block":
        found: list[Any] = await store.get_token_blocks(
            name, tracked.address, start=start, end=end, limit=limit + 1, descending=descending
        )
        rows, next_cursor = _page(found, limit, descending, "time")
        data = [_payloads.token_block_body(r) for r in rows]
    else:
        found = await store.get_token_rollups(
            name,
            tracked.address,
            interval,
            start=start,
            end=end,
            limit=limit + 1,
            descending=descending,
        )
        rows, next_cursor = _page(found, limit, descending, "open_time")
        data = [_payloads.token_rollup_body(r) for r in rows]
    body = {
        "chain": name,
        "token": tracked.address,
        "symbol": tracked.symbol,
        "interval": interval,
        "supply": _supply(services, feed, tracked),
        "data": data,
        "next_cursor": next_cursor,
    }
    return _json(body)


def _supply(services: Services, feed: ChainFeed, token: TokenConfig) -> dict[str, Any]:
    supply = feed.supplies.get(token.address)
    ticker = services.market.tickers.get(f"{token.symbol}-USD")
    price = ticker.last if ticker is not None else None
    total = supply.total_supply if supply is not None else None
    return {
        "total_supply": total,
        "block_number": supply.block_number if supply is not None else None,
        "price": price,
        "fdv": price * total if price is not None and total is not None else None,
    }


@router.get(
    "/{chain}/tokens/{token}/transfers", response_model=TokenTransferPage, summary="Token transfers"
)
async def token_transfers(
    services: ServicesDep,
    chain: ChainPath,
    token: TokenPath,
    min_value: Annotated[float | None, Query(ge=0, description="token units, inclusive")] = None,
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> Response:
    """Newest first; kept for `onchain_transfer_retention_hours`."""
    feed = _feed(services, chain)
    tracked = _token(feed, token)
    before = None
    if cursor is not None:
        position = _decode(cursor, ("b", "i"))
        before = (position["b"], position["i"])
    rows = await _service(services).store.get_transfers(
        feed.config.name, tracked.address, min_value=min_value, before=before, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    data = [
        {
            "block_number": t.block_number,
            "log_index": t.log_index,
            "tx_hash": t.tx_hash,
            "time": t.time,
            "from": t.sender,
            "to": t.receiver,
            "amount": t.amount,
            "amount_raw": t.amount_raw,
        }
        for t in rows
    ]
    next_cursor = None
    if more and rows:
        next_cursor = _encode({"b": rows[-1].block_number, "i": rows[-1].log_index})
    body = {
        "chain": feed.config.name,
        "token": tracked.address,
        "symbol": tracked.symbol,
        "data": data,
        "next_cursor": next_cursor,
    }
    return _json(body)
