"""Alerts, webhooks and predictions methods of `Client` (the blocking twin of _alerts_aio)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import httpx
from pydantic import BaseModel, TypeAdapter

from cryptopulse.api.alerts_schemas import (
    DeliveryList,
    DeliveryOut,
    EndpointOut,
    EventList,
    NewSecretOut,
    RuleList,
    RuleOut,
)
from cryptopulse.api.ml_schemas import ModelList, PredictionList, PredictionOut
from cryptopulse.client import _routes as r
from cryptopulse.client._core import M

__all__ = ["AlertsApi"]

_ENDPOINTS = TypeAdapter(list[EndpointOut])
Body = BaseModel | Mapping[str, Any]


def body_of(body: Body | None) -> Any:
    """A request body from a model (unset fields left out) or a plain mapping."""
    if isinstance(body, BaseModel):
        return body.model_dump(exclude_unset=True)
    return dict(body) if body is not None else None


class AlertsApi:
    """`/v1/alerts`, `/v1/webhooks`, `/v1/predictions` and `/v1/models`."""

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        raise NotImplementedError

    def _send(self, model: type[M], method: str, path: str, body: Body | None = None) -> M:
        response = self.request(method, path, json=body_of(body))
        return model.model_validate_json(response.content)

    # -- alerts ------------------------------------------------------------------------

    def list_alerts(self, **q: Unpack[r.Paged]) -> RuleList:
        response = self.request("GET", r.path_of("list_alerts"), q)
        return RuleList.model_validate_json(response.content)

    def create_alert(self, rule: Body) -> RuleOut:
        """A rule: `{"name", "kind", "params", "cooldown_ms", "one_shot"}` (docs/alerts.md)."""
        return self._send(RuleOut, "POST", r.path_of("create_alert"), rule)

    def alert_events(self, **q: Unpack[r.Paged]) -> EventList:
        response = self.request("GET", r.path_of("alert_events"), q)
        return EventList.model_validate_json(response.content)

    def get_alert(self, rule_id: str) -> RuleOut:
        return self._send(RuleOut, "GET", r.path_of("get_alert", rule_id=rule_id))

    def update_alert(self, rule_id: str, patch: Body) -> RuleOut:
        path = r.path_of("update_alert", rule_id=rule_id)
        return self._send(RuleOut, "PATCH", path, patch)

    def delete_alert(self, rule_id: str) -> None:
        self.request("DELETE", r.path_of("delete_alert", rule_id=rule_id))

    def pause_alert(self, rule_id: str) -> RuleOut:
        return self._send(RuleOut, "POST", r.path_of("pause_alert", rule_id=rule_id))

    def resume_alert(self, rule_id: str) -> RuleOut:
        return self._send(RuleOut, "POST", r.path_of("resume_alert", rule_id=rule_id))

    # -- webhooks ----------------------------------------------------------------------

    def list_webhooks(self) -> list[EndpointOut]:
        response = self.request("GET", r.path_of("list_webhooks"))
        return _ENDPOINTS.validate_json(response.content)

    def create_webhook(self, url: str, description: str = "") -> NewSecretOut:
        """A webhook endpoint; the answer holds its signing secret (`whsec_...`), once."""
        body = {"url": url, "description": description}
        return self._send(NewSecretOut, "POST", r.path_of("create_webhook"), body)

    def get_webhook(self, endpoint_id: str) -> EndpointOut:
        path = r.path_of("get_webhook", endpoint_id=endpoint_id)
        return self._send(EndpointOut, "GET", path)

    def update_webhook(self, endpoint_id: str, patch: Body) -> EndpointOut:
        path = r.path_of("update_webhook", endpoint_id=endpoint_id)
        return self._send(EndpointOut, "PATCH", path, patch)

    def delete_webhook(self, endpoint_id: str) -> None:
        self.request("DELETE", r.path_of("delete_webhook", endpoint_id=endpoint_id))

    def rotate_webhook_secret(self, endpoint_id: str, grace_s: int | None = None) -> NewSecretOut:
        path = r.path_of("rotate_webhook_secret", endpoint_id=endpoint_id)
        body = {"grace_s": grace_s} if grace_s is not None else None
        return self._send(NewSecretOut, "POST", path, body)

    def webhook_deliveries(self, endpoint_id: str, **q: Unpack[r.Paged]) -> DeliveryList:
        path = r.path_of("webhook_deliveries", endpoint_id=endpoint_id)
        response = self.request("GET", path, q)
        return DeliveryList.model_validate_json(response.content)

    def redeliver(self, endpoint_id: str, delivery_id: int) -> DeliveryOut:
        path = r.path_of("redeliver", endpoint_id=endpoint_id, delivery_id=str(delivery_id))
        return self._send(DeliveryOut, "POST", path)

    def test_webhook(self, endpoint_id: str) -> DeliveryOut:
        """Send a signed `webhook.test` event to the endpoint now."""
        path = r.path_of("test_webhook", endpoint_id=endpoint_id)
        return self._send(DeliveryOut, "POST", path)

    # -- predictions -------------------------------------------------------------------

    def predict(
        self, instruments: list[str], interval: str | None = None, model: str | None = None
    ) -> PredictionList:
        body = {"instruments": instruments, "interval": interval, "model": model}
        body = {k: v for k, v in body.items() if v is not None}
        return self._send(PredictionList, "POST", r.path_of("predict"), body)

    def prediction(
        self, instrument: str, interval: str | None = None, model: str | None = None
    ) -> PredictionOut:
        path = r.path_of("prediction", instrument=instrument)
        response = self.request("GET", path, {"interval": interval, "model": model})
        return PredictionOut.model_validate_json(response.content)

    def models(self, name: str | None = None) -> ModelList:
        response = self.request("GET", r.path_of("models"), {"name": name})
        return ModelList.model_validate_json(response.content)
