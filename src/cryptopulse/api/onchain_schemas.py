"""Response models of the on-chain endpoints, declared for the OpenAPI document.

Routes build their bytes with orjson; these models document the shapes (docs/onchain.md
defines every metric).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

Cursor = str | None


class OnchainToken(BaseModel):
    symbol: str
    address: str = Field(description="ERC-20 contract, lower-case hex")
    decimals: int
    whale_threshold: float | None = Field(description="token units; transfers at or above it")
    total_supply: float | None = Field(description="`totalSupply()` read on-chain, token units")
    supply_block: int | None = Field(description="block the supply was read at")


class ChainOut(BaseModel):
    chain: str
    chain_id: int
    confirmations: int
    connected: bool
    websocket: bool = Field(description="newHeads subscription live")
    head: int | None = Field(description="the node's latest block")
    processed: int | None = Field(description="newest block processed (head - confirmations)")
    last_block_time: int | None = Field(description="timestamp of `processed`, ms")
    reorgs: int
    orphaned_blocks: int
    tokens: list[OnchainToken]
    exchanges: int = Field(description="exchange addresses configured for flows")
    last_error: str | None


class ChainList(BaseModel):
    data: list[ChainOut]


class ChainMetrics(BaseModel):
    """One block (`interval=block`: `number`, `hash`, `time`) or one hour/day bucket
    (`open_time`). Fee fields are in gwei."""

    number: int | None = None
    hash: str | None = None
    parent_hash: str | None = None
    time: int | None = None
    open_time: int | None = None
    blocks: int | None = Field(None, description="blocks in the bucket")
    tx_count: int
    active_addresses: int = Field(description="distinct senders and receivers (HLL in buckets)")
    gas_used: int
    gas_limit: int
    utilisation: float = Field(description="gas used / gas limit")
    base_fee_gwei: float | None
    priority_fee_gwei: float | None = Field(description="mean tip per gas over transactions")
    priority_fee_median_gwei: float | None = None
    deployments: int


class ChainMetricsPage(BaseModel):
    chain: str
    interval: str
    data: list[ChainMetrics]
    next_cursor: Cursor = Field(description="pass as ?cursor= for the next page")


class OnchainTokenMetrics(BaseModel):
    number: int | None = None
    time: int | None = None
    open_time: int | None = None
    transfers: int
    volume: float = Field(description="token units")
    senders: int
    receivers: int
    inflow: float = Field(description="into configured exchange addresses, token units")
    outflow: float = Field(description="out of configured exchange addresses")
    whales: int = Field(description="transfers at or above the whale threshold")


class OnchainSupply(BaseModel):
    total_supply: float | None
    block_number: int | None
    price: float | None = Field(description="latest `SYMBOL-USD` composite price, if any")
    fdv: float | None = Field(description="price x on-chain total supply")


class OnchainTokenPage(BaseModel):
    chain: str
    token: str
    symbol: str
    interval: str
    supply: OnchainSupply
    data: list[OnchainTokenMetrics]
    next_cursor: Cursor


class TokenTransferOut(BaseModel):
    block_number: int
    log_index: int
    tx_hash: str
    time: int
    sender: str = Field(alias="from")
    receiver: str = Field(alias="to")
    amount: float = Field(description="token units")
    amount_raw: str = Field(description="the exact uint256, decimal")


class TokenTransferPage(BaseModel):
    chain: str
    token: str
    symbol: str
    data: list[TokenTransferOut]
    next_cursor: Cursor
