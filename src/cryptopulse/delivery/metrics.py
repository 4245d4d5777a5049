"""Prometheus metrics of alerts and webhook delivery, read from the engine's and the
worker's counters at scrape time (nothing on the evaluation path touches Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cryptopulse.api.metrics import REGISTRY
from cryptopulse.delivery.engine import AlertService
from cryptopulse.delivery.worker import DeliveryWorker

__all__ = ["AlertCollector"]


class AlertCollector:
    """Rules, firings, relay and webhook attempt counters of this process."""

    _engine: AlertService | None = None
    _worker: DeliveryWorker | None = None
    _registered = False

    @classmethod
    def bind(cls, engine: AlertService | None, worker: DeliveryWorker | None) -> None:
        cls._engine, cls._worker = engine, worker
        if not cls._registered:
            REGISTRY.register(cls())
            cls._registered = True

    def collect(self) -> Iterator[Metric]:
        engine, worker = self._engine, self._worker
        if engine is not None:
            rules = GaugeMetricFamily(
                "cryptopulse_alert_rules", "Alert rules held", labels=["state"]
            )
            active = sum(1 for r in engine.book.rules.values() if r.active)
            rules.add_metric(["active"], active)
            rules.add_metric(["inactive"], len(engine.book.rules) - active)
            yield rules
            yield _counter("cryptopulse_alerts_fired", "Alert events written", engine.written)
            yield _counter(
                "cryptopulse_alerts_failed_flushes",
                "Failed writes of alert events (retried)",
                engine.failed_flushes,
            )
        if worker is not None:
            dispatcher = worker.dispatcher
            yield _counter(
                "cryptopulse_alerts_relayed", "Outbox rows relayed", worker.relay.relayed
            )
            yield _counter("cryptopulse_webhook_attempts", "Webhook requests sent", dispatcher.sent)
            yield _counter(
                "cryptopulse_webhook_delivered",
                "Webhook attempts answered 2xx",
                dispatcher.delivered,
            )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], value)
    return family
