"""Prometheus metrics of the Redis bus, read from its counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cryptopulse.api.metrics import REGISTRY
from cryptopulse.bus.redis import RedisBus


class BusCollector:
    """Outbox and reader health of this process's Redis bus (docs/operations.md)."""

    _bus: RedisBus | None = None
    _registered = False

    @classmethod
    def bind(cls, bus: RedisBus) -> None:
        cls._bus = bus
        if not cls._registered:
            REGISTRY.register(cls())
            cls._registered = True

    def collect(self) -> Iterator[Metric]:
        bus = self._bus
        if bus is None:
            return
        outbox, reader = bus.outbox, bus.reader
        for name, doc, value in (
            ("published", "Messages written to Redis by this process", outbox.written),
            ("dropped", "Messages dropped because the outbox was full", outbox.dropped),
            ("refused", "Messages Redis refused (a newer seq: two publishers?)", outbox.refused),
        ):
            counter = CounterMetricFamily(f"cryptopulse_bus_{name}_messages", doc)
            counter.add_metric([], value)
            yield counter
        for name, doc, gauge in (
            ("outbox_pending", "Messages waiting to be written to Redis", outbox.pending),
            ("publisher_up", "1 while the outbox can write to Redis", int(outbox.connected)),
            ("reader_up", "1 while the reader can read from Redis", int(not reader.down)),
            ("followed_channels", "Channels this process reads", len(reader.follows)),
        ):
            level = GaugeMetricFamily(f"cryptopulse_bus_{name}", doc)
            level.add_metric([], gauge)
            yield level
