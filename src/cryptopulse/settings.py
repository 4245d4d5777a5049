"""One settings object, read once from the environment (prefix CRYPTOPULSE_) and passed in."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RateLimitHeaders = Literal["ietf", "draft", "x"]


def _every_rate_limit_header() -> list[RateLimitHeaders]:
    return ["ietf", "draft", "x"]


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

PLACEHOLDER_SECRET = "change-me"  # noqa: S105  (refused in production)


# --- on-chain: EVM chains followed over JSON-RPC (docs/onchain.md) ----------------------
_EVM_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class TokenConfig(BaseModel):
    """An ERC-20 token followed on one chain."""

    symbol: str = Field(pattern=r"^[A-Za-z0-9]{1,20}$")
    address: str = Field(pattern=_EVM_ADDRESS)
    decimals: int = Field(18, ge=0, le=77)
    whale_threshold: float | None = Field(None, gt=0)  # token units; None: no whale events

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class ChainConfig(BaseModel):
    """One EVM chain: the user's own RPC endpoint (no key is shipped), tokens, exchanges."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    chain_id: int = Field(ge=1)
    rpc_url: str
    ws_url: str | None = None  # eth_subscribe newHeads, when the endpoint offers it
    confirmations: int = Field(12, ge=0, le=1000)
    backfill_blocks: int = Field(100, ge=0)  # first start: this many confirmed blocks back
    start_block: int | None = Field(None, ge=0)  # first start: from here instead
    poll_interval_s: float = Field(2.0, gt=0)
    rate_limit_rps: float = Field(10.0, ge=0)  # JSON-RPC calls per second; 0: unlimited
    max_retries: int = Field(5, ge=0)
    timeout_s: float = Field(10.0, gt=0)
    batch_blocks: int = Field(20, ge=1, le=500)
    reorg_window: int = Field(128, ge=1, le=10_000)  # blocks whose rollups can be undone
    supply_refresh_blocks: int = Field(300, ge=1)
    tokens: list[TokenConfig] = Field(default_factory=list)
    exchanges: dict[str, str] = Field(default_factory=dict)  # address -> exchange label

    @field_validator("exchanges")
    @classmethod
    def _exchange_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for address in value:
            if not re.match(_EVM_ADDRESS, address):
                raise ValueError(f"exchange address {address!r} is not 0x + 40 hex digits")
        return {address.lower(): label for address, label in value.items()}


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
    # The simulator's random seed: the same seed, the same prices step after step (bots'
    # tests against a reproducible market); None, a different market every start.
    sim_seed: int | None = None
    bus_history: int = Field(1000, ge=1)  # messages kept per channel for resume
    # Garbage collection of serving processes (processes/_gc.py, docs/operations.md): the
    # startup heap frozen, the rest collected in full every gc_full_s, twice as long after
    # each that reclaimed little, up to gc_full_max_s; checked every gc_freeze_s (0: off,
    # Python's default collector).
    gc_freeze_s: float = Field(1.0, ge=0)
    gc_full_s: float = Field(600.0, gt=0)
    gc_full_max_s: float = Field(3600.0, gt=0)
    trade_retention_hours: float = 24.0
    composite_stale_ms: int = 60_000
    # Open candles are published at most once per this many ms per channel (0: every trade).
    candle_update_ms: int = Field(250, ge=0, le=60_000)
    # A ticker channel publishes at most once per this many ms; a ticker after a quiet
    # spell goes out at once, one during the period waits for its end (0: every ticker).
    ticker_update_ms: int = Field(100, ge=0, le=60_000)
    fold_stablecoins: bool = False
    store_flush_interval_s: float = 0.25
    store_batch_size: int = 2000
    ws_send_queue: int = 1000
    ws_max_frame_bytes: int = 65_536
    # permessage-deflate for clients that offer it: ~5-15x less bandwidth for JSON frames,
    # ~48 KB of zlib state and a compression per frame per connection. Off by default: in
    # the mixed benchmark it cost a quarter of the server's CPU and doubled its latency
    # tails (docs/decisions.md, docs/operations.md).
    ws_compression: bool = False
    ws_heartbeat_s: float = 15.0
    ws_auth_timeout_s: float = 5.0
    candle_close_grace_ms: int = 2_000
    max_candles_per_page: int = 1000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # uvicorn's access log, a line per request: off by default, it cost a third of the
    # REST throughput (docs/operations.md); metrics and X-Request-Id cover requests.
    access_log: bool = False
    binance_ws_url: str = "wss://stream.binance.com:9443"
    binance_rest_url: str = "https://api.binance.com"
    coinbase_ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    coinbase_rest_url: str = "https://api.exchange.coinbase.com"
    kraken_ws_url: str = "wss://ws.kraken.com"

    # --- analytics: indicators, signals, grades, sectors (docs/grades.md, docs/sectors.md) ---
    analytics_enabled: bool = True
    # Grades, sector indices and correlations are computed on candles of this interval.
    analytics_interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "5m"
    # Comma-separated quote preference when choosing one instrument per symbol.
    analytics_quotes: str = "USD,USDT,USDC,BTC,ETH"
    analytics_history_candles: int = Field(9_000, ge=100, le=100_000)  # kept per instrument
    analytics_warmup_candles: int = Field(2_000, ge=50, le=20_000)  # replayed for indicators
    analytics_debounce_s: float = 1.0  # wait after a close before recomputing grades/sectors
    # Scale-out: the Redis lock electing the one API process that publishes analytics and
    # writes its history lapses this long after its holder stops renewing (docs/scale-out.md).
    analytics_leader_ttl_s: float = Field(5.0, ge=0.3, le=120)
    sector_breakdown_threshold: float = 0.3  # member-to-sector correlation below this: event
    tokens_path: str | None = None  # YAML merged over the shipped token registry

    # --- access control, rate limits, hardening (docs/security.md) ---
    environment: Literal["development", "production"] = "development"
    # Placeholders are refused in production; in development a random per-process secret
    # replaces them (tokens then hold in this process only).
    jwt_secret: str = PLACEHOLDER_SECRET
    # Secrets that signed tokens still alive: verified (chosen by `kid`), never used to sign.
    jwt_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_issuer: str = "cryptopulse"
    jwt_audience: str = "cryptopulse-api"
    jwt_ttl_s: int = Field(900, ge=30, le=86_400)
    # Key lookups are cached this long per worker: a revocation holds everywhere within it.
    key_cache_ttl_s: float = Field(1.0, gt=0, le=1.0)
    key_rotation_grace_s: int = Field(86_400, ge=0)
    # Plan given to callers without credentials (e.g. "public"); None: credentials required.
    anonymous_plan: str | None = None
    # JSON: plan name -> fields to change or a new plan (see security/plans.py).
    plans: dict[str, dict[str, int]] = Field(default_factory=dict)
    # `memory://` (one process) or `redis://host:port/db` (shared by workers and replicas).
    rate_limit_storage_url: str = "memory://"
    # Rate-limit header families on every limited response: `ietf` (RateLimit-Policy,
    # RateLimit: the IETF draft), `draft` (RateLimit-Limit/-Remaining/-Reset: its older
    # form), `x` (X-RateLimit-*, reset in epoch seconds). All three by default; each costs
    # the server ~1.3 µs a header (docs/operations.md).
    rate_limit_headers: Annotated[list[RateLimitHeaders], NoDecode] = Field(
        default_factory=_every_rate_limit_header
    )
    auth_failures_per_minute: int = 30  # per client address
    usage_flush_interval_s: float = 5.0
    max_request_bytes: int = 1_048_576  # larger bodies get 413
    max_candle_range: int = 100_000  # (end - start) / interval of one candles query
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    docs_enabled: bool = True  # /docs, /redoc and /openapi.json
    # FastAPI's native OpenTelemetry (spans, metrics, logs through the globally configured
    # providers). Off: its per-request provider checks cost ~10 % of a ticker request.
    otel_enabled: bool = False
    # First start, no key in the store, not production: create an admin key and write it to
    # `first_key_file` (default: next to the SQLite file, else ./data/first-key.txt).
    bootstrap_key: bool = True
    first_key_file: str | None = None
    ws_reauth_grace_s: float = 10.0  # after `token_expired`, time to send a new `auth`
    outbound_timeout_s: float = 10.0  # every outbound HTTP call

    @field_validator("jwt_previous_secrets", "cors_origins", "rate_limit_headers", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment == "production":
            secret = self.jwt_secret
            if secret == PLACEHOLDER_SECRET or len(secret) < 32 or "change" in secret.lower():
                raise ValueError("production needs CRYPTOPULSE_JWT_SECRET: 32+ random characters")
        return self

    # --- scale-out: PostgreSQL pool, Redis bus, ingest shards, API workers ---------------
    # Pool of each process (PostgreSQL; SQLite uses one file and ignores these).
    database_pool_size: int = 10
    database_max_overflow: int = 10
    # Opening a connection: short, so REST answers 503 within 1 s when the database is down
    # or unreachable instead of hanging. Waiting for a pooled connection when all are busy
    # (a burst, not an outage: failed connects never hold the pool) may take longer.
    database_connect_timeout_s: float = 0.8
    database_pool_timeout_s: float = 2.0
    # Any one statement (large batched upserts included).
    database_command_timeout_s: float = 30.0
    # Keys on the Redis bus start with this (several deployments can share one Redis).
    redis_prefix: str = "cp:"
    # Redis calls on the request path (subscribe replay, pings) give up after this.
    redis_timeout_s: float = 0.8
    # Messages an ingest process holds while Redis is unreachable (oldest dropped beyond).
    redis_outbox: int = 100_000
    # Ingest shard "i/n": owns the pairs whose hash falls in shard i of n (0-based).
    shard: str = "0/1"
    # Ingest processes serve /healthz, /readyz and /metrics here (probes, Prometheus).
    ingest_port: int = 9100
    # API worker processes of `serve` (scale-out: no sources in them).
    workers: int = 1
    # Months of candle partitions created ahead on PostgreSQL.
    partitions_ahead_months: int = 3

    # --- on-chain (docs/onchain.md) ---------------------------------------------------
    # JSON list of chains (see ChainConfig); none by default: bring your own RPC URL.
    onchain_chains: list[ChainConfig] = Field(default_factory=list)
    onchain_transfer_retention_hours: float = 168.0  # tracked-token transfers kept
    onchain_flush_interval_s: float = 0.5  # how often block metrics reach the store

    # --- predictions (docs/models.md) ------------------------------------------------
    ml_enabled: bool = True
    ml_batch_size: int = Field(256, ge=1, le=10_000)  # most rows in one model call
    ml_batch_wait_ms: float = Field(2.0, ge=0, le=1_000)  # gathering window of a batch
    ml_queue_size: int = Field(10_000, ge=1, le=1_000_000)  # waiting rows before 503
    ml_threads: int = Field(1, ge=1, le=64)  # onnxruntime threads per model call
    ml_reload_s: float = Field(30.0, gt=0)  # how often the registry is checked for models

    # --- alerts and webhooks (docs/alerts.md) ------------------------------------------
    alerts_enabled: bool = True
    # Alert events and finished webhook deliveries (with their attempt log) older than this
    # are deleted by the housekeeping task; pending deliveries are kept. 0 keeps everything.
    alert_retention_days: float = Field(30.0, ge=0)
    alerts_flush_interval_s: float = 0.1  # firings reach the store (event + outbox) this often
    # Run the outbox relay and webhook dispatcher inside `serve` / `ingest` (else run
    # `cryptopulse deliver` as its own process).
    delivery_embedded: bool = True
    delivery_poll_interval_s: float = 0.5  # outbox / due deliveries checked this often
    delivery_lease_s: float = 30.0  # a claimed delivery is re-sent if not done by then
    delivery_batch: int = Field(100, ge=1, le=10_000)
    delivery_concurrency: int = Field(32, ge=1, le=1000)
    # Seconds before attempt 1, 2, ... (jittered +-20 %); JSON list.
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    webhook_timeout_s: float = 15.0
    webhook_disable_after_s: float = 5 * 86_400.0  # failing this long disables an endpoint
    webhook_secret_grace_s: int = Field(86_400, ge=0)  # rotation: old secret also signs
    # Loopback/private/link-local targets (tests, on-premise receivers): off by default.
    webhook_allow_private_targets: bool = False
    # Seals endpoint secrets at rest (AES-256-GCM); unset: stored as they are.
    webhook_secrets_key: str | None = None

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
