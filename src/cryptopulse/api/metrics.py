"""Prometheus metrics: one registry per process, read by /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

FEED_MESSAGES = Counter(
    "cryptopulse_feed_messages_total", "Messages received per feed", ("feed",), registry=REGISTRY
)
FEED_GAPS = Counter(
    "cryptopulse_feed_gaps_total",
    "Sequence or trade-id gaps per feed",
    ("feed",),
    registry=REGISTRY,
)
FEED_RECONNECTS = Counter(
    "cryptopulse_feed_reconnects_total", "Reconnects per feed", ("feed",), registry=REGISTRY
)
FEED_CONNECTED = Gauge(
    "cryptopulse_feed_connected",
    "1 while a feed is connected",
    ("feed", "kind"),
    registry=REGISTRY,
)
FEED_LAG = Gauge(
    "cryptopulse_feed_lag_seconds",
    "Receipt time minus exchange time of the last trade",
    ("feed",),
    registry=REGISTRY,
)
BUS_LAG = Gauge(
    "cryptopulse_bus_lag_seconds",
    "Age of the newest message when the stream writer sent it (max over connections)",
    registry=REGISTRY,
)
STREAM_CONNECTIONS = Gauge(
    "cryptopulse_stream_connections", "Open WebSocket stream connections", registry=REGISTRY
)
PIPELINE_TRADES = Gauge(
    "cryptopulse_pipeline_trades",
    "Trades accepted by the pipeline since start",
    registry=REGISTRY,
)
PIPELINE_DUPLICATES = Gauge(
    "cryptopulse_pipeline_duplicate_trades",
    "Duplicate trades ignored since start",
    registry=REGISTRY,
)
PIPELINE_LATE = Gauge(
    "cryptopulse_pipeline_late_trades",
    "Trades too late for a closed candle since start",
    registry=REGISTRY,
)
