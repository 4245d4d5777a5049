"""Every REST operation the SDK calls, by method name; query parameters as TypedDicts.

`ROUTES` is what tests/client/test_coverage.py compares with the OpenAPI document, so an
endpoint added to the API without a client method fails the suite.
"""

from __future__ import annotations

from typing import Literal, TypedDict
from urllib.parse import quote

Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
ChainInterval = Literal["block", "1h", "1d"]

# name -> (HTTP method, path template as in the OpenAPI document)
ROUTES: dict[str, tuple[str, str]] = {
    "healthz": ("GET", "/healthz"),
    "readyz": ("GET", "/readyz"),
    "metrics_text": ("GET", "/metrics"),
    "instruments": ("GET", "/v1/instruments"),
    "tickers": ("GET", "/v1/tickers"),
    "ticker": ("GET", "/v1/tickers/{instrument}"),
    "candles": ("GET", "/v1/candles/{instrument}"),
    "trades": ("GET", "/v1/trades/{instrument}"),
    "chains": ("GET", "/v1/onchain/chains"),
    "chain_metrics": ("GET", "/v1/onchain/{chain}/metrics"),
    "token_metrics": ("GET", "/v1/onchain/{chain}/tokens/{token}/metrics"),
    "token_transfers": ("GET", "/v1/onchain/{chain}/tokens/{token}/transfers"),
    "indicators": ("GET", "/v1/indicators/{instrument}"),
    "levels": ("GET", "/v1/levels/{instrument}"),
    "quant_metrics": ("GET", "/v1/metrics/{instrument}"),
    "signals": ("GET", "/v1/signals"),
    "signal_history": ("GET", "/v1/signals/{instrument}"),
    "signal_performance": ("GET", "/v1/signals/{instrument}/performance"),
    "grades": ("GET", "/v1/grades"),
    "grade": ("GET", "/v1/grades/{symbol}"),
    "grade_history": ("GET", "/v1/grades/{symbol}/history"),
    "tokens": ("GET", "/v1/tokens"),
    "token": ("GET", "/v1/tokens/{symbol}"),
    "sectors": ("GET", "/v1/sectors"),
    "sector": ("GET", "/v1/sectors/{sector_id}"),
    "sector_history": ("GET", "/v1/sectors/{sector_id}/history"),
    "correlations": ("GET", "/v1/correlations/{instrument}"),
    "oauth_token": ("POST", "/v1/oauth/token"),
    "me": ("GET", "/v1/me"),
    "usage": ("GET", "/v1/usage"),
    "list_keys": ("GET", "/v1/admin/keys"),
    "create_key": ("POST", "/v1/admin/keys"),
    "get_key": ("GET", "/v1/admin/keys/{key_id}"),
    "revoke_key": ("DELETE", "/v1/admin/keys/{key_id}"),
    "rotate_key": ("POST", "/v1/admin/keys/{key_id}/rotate"),
    "audit": ("GET", "/v1/admin/audit"),
    "list_alerts": ("GET", "/v1/alerts"),
    "create_alert": ("POST", "/v1/alerts"),
    "alert_events": ("GET", "/v1/alerts/events"),
    "get_alert": ("GET", "/v1/alerts/{rule_id}"),
    "update_alert": ("PATCH", "/v1/alerts/{rule_id}"),
    "delete_alert": ("DELETE", "/v1/alerts/{rule_id}"),
    "pause_alert": ("POST", "/v1/alerts/{rule_id}/pause"),
    "resume_alert": ("POST", "/v1/alerts/{rule_id}/resume"),
    "list_webhooks": ("GET", "/v1/webhooks"),
    "create_webhook": ("POST", "/v1/webhooks"),
    "get_webhook": ("GET", "/v1/webhooks/{endpoint_id}"),
    "update_webhook": ("PATCH", "/v1/webhooks/{endpoint_id}"),
    "delete_webhook": ("DELETE", "/v1/webhooks/{endpoint_id}"),
    "rotate_webhook_secret": ("POST", "/v1/webhooks/{endpoint_id}/rotate"),
    "webhook_deliveries": ("GET", "/v1/webhooks/{endpoint_id}/deliveries"),
    "redeliver": ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"),
    "test_webhook": ("POST", "/v1/webhooks/{endpoint_id}/test"),
    "predict": ("POST", "/v1/predictions"),
    "prediction": ("GET", "/v1/predictions/{instrument}"),
    "models": ("GET", "/v1/models"),
}


def path_of(name: str, **parts: str) -> str:
    """The path of operation `name`, each path part escaped (instruments hold `:`)."""
    template = ROUTES[name][1]
    return template.format(**{k: quote(v, safe=":") for k, v in parts.items()})


class Paged(TypedDict, total=False):
    limit: int
    cursor: str


class TimePaged(Paged, total=False):
    start: int
    end: int


class CandleQuery(TimePaged, total=False):
    interval: Interval


class IndicatorQuery(TimePaged, total=False):
    interval: Interval
    names: str


class LevelQuery(TypedDict, total=False):
    interval: Interval
    lookback: int
    max_levels: int


class QuantQuery(TypedDict, total=False):
    interval: Interval
    start: int
    end: int
    benchmark: str


class SignalsQuery(Paged, total=False):
    interval: Interval
    state: Literal["bullish", "bearish", "neutral"]


class SignalHistoryQuery(TimePaged, total=False):
    interval: Interval


class PerformanceQuery(TypedDict, total=False):
    interval: Interval
    start: int
    end: int


class GradesQuery(Paged, total=False):
    sort: Literal["symbol", "trader", "investor"]


class TokensQuery(Paged, total=False):
    sector: str


class CorrelationQuery(TypedDict, total=False):
    window: int
    limit: int


class ChainQuery(TimePaged, total=False):
    interval: ChainInterval


class TransferQuery(Paged, total=False):
    min_value: float


class KeyCreate(TypedDict, total=False):
    name: str
    scopes: list[str]
    plan: str
    account: str
    expires_at: int
    test: bool
