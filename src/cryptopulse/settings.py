"""One settings object, read once from the environment (prefix CRYPTOPULSE_) and passed in."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_INSTRUMENTS: tuple[str, ...] = (
    "coinbase:BTC-USD",
    "coinbase:ETH-USD",
    "coinbase:SOL-USD",
    "coinbase:XRP-USD",
    "coinbase:DOGE-USD",
    "coinbase:ADA-USD",
    "coinbase:AVAX-USD",
    "coinbase:LINK-USD",
    "binance:BTC-USDT",
    "binance:ETH-USDT",
    "binance:SOL-USDT",
    "binance:BNB-USDT",
    "binance:XRP-USDT",
    "binance:DOGE-USDT",
    "binance:ADA-USDT",
    "binance:LINK-USDT",
    "kraken:BTC-USD",
    "kraken:ETH-USD",
    "kraken:SOL-USD",
    "kraken:XRP-USD",
)

SourceMode = str  # "auto" | "live" | "sim" | "replay:PATH"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRYPTOPULSE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite+aiosqlite:///./data/cryptopulse.db"
    bus_url: str = "memory://"
    source: SourceMode = "auto"
    # NoDecode: a comma-separated env value is split below instead of parsed as JSON.
    instruments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_INSTRUMENTS)
    )
    # auto mode: how long the live feeds get before the simulator takes over.
    live_connect_timeout_s: float = 5.0
    bus_history: int = 1000
    trade_retention_hours: float = 24.0
    composite_stale_ms: int = 60_000
    fold_stablecoins: bool = False
    store_flush_interval_s: float = 0.25
    store_batch_size: int = 2000
    ws_send_queue: int = 1000
    ws_max_frame_bytes: int = 65_536
    ws_heartbeat_s: float = 15.0
    ws_auth_timeout_s: float = 5.0
    candle_close_grace_ms: int = 2_000
    max_candles_per_page: int = 1000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    binance_ws_url: str = "wss://stream.binance.com:9443"
    binance_rest_url: str = "https://api.binance.com"
    coinbase_ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    coinbase_rest_url: str = "https://api.exchange.coinbase.com"
    kraken_ws_url: str = "wss://ws.kraken.com"

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        if value in ("auto", "live", "sim") or value.startswith("replay:"):
            return value
        raise ValueError("source must be auto, live, sim or replay:PATH")

    @field_validator("instruments", mode="before")
    @classmethod
    def _split_instruments(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
