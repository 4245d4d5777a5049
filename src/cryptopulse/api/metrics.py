"""Prometheus metrics: one registry per process, read by /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

REGISTRY = CollectorRegistry(auto_describe=True)

BUS_LAG = Gauge(
    "cryptopulse_bus_lag_seconds",
    "Age of the newest message when the stream writer sent it (max over connections)",
    registry=REGISTRY,
)
STREAM_CONNECTIONS = Gauge(
    "cryptopulse_stream_connections", "Open WebSocket stream connections", registry=REGISTRY
)


class FeedCollector:
    """Exports feed and pipeline counters straight from the live status objects at scrape time,
    so sources stay free of Prometheus calls on their hot path."""

    _services: Any = None
    _registered = False

    @classmethod
    def bind(cls, services: Any) -> None:
        cls._services = services
        if not cls._registered:
            REGISTRY.register(cls())
            cls._registered = True

    def collect(self) -> Iterator[Metric]:
        services = self._services
        if services is None:
            return
        messages = CounterMetricFamily(
            "cryptopulse_feed_messages", "Messages received per feed", labels=["feed"]
        )
        gaps = CounterMetricFamily(
            "cryptopulse_feed_gaps", "Sequence or trade-id gaps per feed", labels=["feed"]
        )
        reconnects = CounterMetricFamily(
            "cryptopulse_feed_reconnects", "Reconnects per feed", labels=["feed"]
        )
        backfilled = CounterMetricFamily(
            "cryptopulse_feed_backfilled_trades",
            "Trades fetched by REST backfill",
            labels=["feed"],
        )
        connected = GaugeMetricFamily(
            "cryptopulse_feed_connected", "1 while a feed is connected", labels=["feed", "kind"]
        )
        for status in services.market.feeds.values():
            messages.add_metric([status.name], status.messages)
            gaps.add_metric([status.name], status.gaps)
            reconnects.add_metric([status.name], status.reconnects)
            backfilled.add_metric([status.name], status.backfilled)
            connected.add_metric([status.name, status.kind], 1.0 if status.connected else 0.0)
        yield from (messages, gaps, reconnects, backfilled, connected)
        stats = services.pipeline.stats
        for name, value, doc in (
            ("cryptopulse_pipeline_trades", stats.trades, "Trades accepted by the pipeline"),
            ("cryptopulse_pipeline_duplicate_trades", stats.duplicates, "Duplicate trades ignored"),
            (
                "cryptopulse_pipeline_late_trades",
                services.pipeline.late,
                "Trade applications refused because their candle had closed (per interval)",
            ),
            (
                "cryptopulse_store_dropped_trades",
                services.writer.dropped_trades,
                "Trades dropped because the store writer fell too far behind",
            ),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family
