"""JSON bodies of on-chain records, shared by the bus events and the REST responses."""

from __future__ import annotations

from typing import Any

from cryptopulse.domain.onchain import BlockMetrics, TokenBlockMetrics, WhaleTransfer

_CHAIN_ROLLUP_FIELDS = (
    "blocks",
    "tx_count",
    "active_addresses",
    "gas_used",
    "gas_limit",
    "utilisation",
    "base_fee_gwei",
    "priority_fee_gwei",
    "deployments",
)
_TOKEN_FIELDS = (
    "transfers",
    "volume",
    "senders",
    "receivers",
    "inflow",
    "outflow",
    "whales",
)


def block_body(m: BlockMetrics) -> dict[str, Any]:
    return {
        "number": m.number,
        "hash": m.hash,
        "parent_hash": m.parent_hash,
        "time": m.time,
        "tx_count": m.tx_count,
        "active_addresses": m.active_addresses,
        "gas_used": m.gas_used,
        "gas_limit": m.gas_limit,
        "utilisation": m.utilisation,
        "base_fee_gwei": m.base_fee_gwei,
        "priority_fee_gwei": m.priority_fee_gwei,
        "priority_fee_median_gwei": m.priority_fee_median_gwei,
        "deployments": m.deployments,
    }


def rollup_body(row: Any) -> dict[str, Any]:
    """A stored or computed chain rollup (anything with the fields and `open_time`)."""
    body: dict[str, Any] = {"open_time": row.open_time}
    body.update({name: getattr(row, name) for name in _CHAIN_ROLLUP_FIELDS})
    return body


def token_block_body(m: TokenBlockMetrics) -> dict[str, Any]:
    body: dict[str, Any] = {"number": m.number, "time": m.time}
    body.update({name: getattr(m, name) for name in _TOKEN_FIELDS})
    return body


def token_rollup_body(row: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"open_time": row.open_time}
    body.update({name: getattr(row, name) for name in _TOKEN_FIELDS})
    return body


def whale_body(w: WhaleTransfer) -> dict[str, Any]:
    return {
        "event": "whale",
        "chain": w.chain,
        "token": w.token,
        "symbol": w.symbol,
        "block_number": w.block_number,
        "log_index": w.log_index,
        "tx_hash": w.tx_hash,
        "time": w.time,
        "from": w.sender,
        "to": w.receiver,
        "amount": w.amount,
        "exchange_in": w.exchange_in,
        "exchange_out": w.exchange_out,
    }
