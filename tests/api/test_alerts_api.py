"""`/v1/alerts`: CRUD, pause and resume, owner-only access, validation, plan limits; and
end to end over real sockets: a trade crosses a rule's level, the event arrives on the
owner's `alerts` stream channel (not on another account's) and at its webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from authkit import http, make_key, make_settings, on_loopback, running
from fastapi import FastAPI
from websockets.asyncio.client import connect

from cryptopulse.api import create_app
from cryptopulse.domain.models import Trade
from cryptopulse.runtime import Services

T0 = 1_700_000_000_000
PRICE_RULE: dict[str, Any] = {
    "name": "BTC above 100",
    "kind": "price_cross",
    "params": {"instrument": "COINBASE:btc-usd", "level": 100, "direction": "up"},
}


async def test_crud_pause_resume_delete(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app, "alice", ["alerts:write"])
        async with http(app, key) as client:
            created = await client.post("/v1/alerts", json=PRICE_RULE)
            assert created.status_code == 201, created.text
            rule = created.json()
            assert rule["params"]["instrument"] == "coinbase:BTC-USD"
            assert rule["status"] == "active" and rule["id"].startswith("alr_")
            services: Services = app.state.services
            assert services.alerts is not None and rule["id"] in services.alerts.book.rules
            listed = (await client.get("/v1/alerts")).json()
            assert [r["id"] for r in listed["data"]] == [rule["id"]]
            paused = (await client.post(f"/v1/alerts/{rule['id']}/pause")).json()
            assert paused["status"] == "paused"
            assert not services.alerts.book.rules[rule["id"]].active
            changed = await client.patch(
                f"/v1/alerts/{rule['id']}", json={"cooldown_ms": 60_000, "name": "renamed"}
            )
            assert changed.json()["cooldown_ms"] == 60_000
            resumed = (await client.post(f"/v1/alerts/{rule['id']}/resume")).json()
            assert resumed["status"] == "active" and resumed["name"] == "renamed"
            assert (await client.delete(f"/v1/alerts/{rule['id']}")).status_code == 204
            assert (await client.get(f"/v1/alerts/{rule['id']}")).status_code == 404
            assert rule["id"] not in services.alerts.book.rules


async def test_other_accounts_see_404(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        alice = await make_key(app, "alice", ["alerts:write"])
        bob = await make_key(app, "bob", ["alerts:write"])
        async with http(app, alice) as a, http(app, bob) as b:
            rule = (await a.post("/v1/alerts", json=PRICE_RULE)).json()
            for method, path in [
                ("GET", f"/v1/alerts/{rule['id']}"),
                ("POST", f"/v1/alerts/{rule['id']}/pause"),
                ("DELETE", f"/v1/alerts/{rule['id']}"),
            ]:
                response = await b.request(method, path)
                assert response.status_code == 404, (method, path)
            assert (await b.get("/v1/alerts")).json()["data"] == []
            assert (await b.get("/v1/alerts/events")).json()["data"] == []


async def test_validation_and_plan_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, plans={"tiny": {"alert_rules": 2}})
    async with running(settings) as app:
        key = await make_key(app, "alice", ["alerts:write"], plan="tiny")
        market = await make_key(app, "alice", ["market:read"], plan="tiny")
        async with http(app, key) as client:
            bad = await client.post(
                "/v1/alerts", json={**PRICE_RULE, "params": {"instrument": "coinbase:BTC-USD"}}
            )
            assert bad.status_code == 422
            assert bad.json()["errors"] == [
                {"field": "params.level", "message": "required for price_cross"}
            ]
            unknown = await client.post(
                "/v1/alerts", json={**PRICE_RULE, "params": {"instrument": "nope", "level": 1}}
            )
            assert unknown.status_code == 422
            assert unknown.json()["errors"][0]["field"] == "params.instrument"
            for _ in range(2):
                assert (await client.post("/v1/alerts", json=PRICE_RULE)).status_code == 201
            over = await client.post("/v1/alerts", json=PRICE_RULE)
            assert over.status_code == 409
            assert over.headers["content-type"] == "application/problem+json"
        async with http(app, market) as client:
            assert (await client.get("/v1/alerts")).status_code == 403
        async with http(app) as client:
            assert (await client.get("/v1/alerts")).status_code == 401


@asynccontextmanager
async def live_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[FastAPI, int]]:
    values: dict[str, Any] = {
        "webhook_allow_private_targets": True,
        "delivery_poll_interval_s": 0.05,
        "alerts_flush_interval_s": 0.02,
    }
    settings = make_settings(tmp_path, **(values | overrides))
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with on_loopback(app) as port:
        yield app, port


async def trade(services: Services, price: float, n: int) -> None:
    await services.pipeline.on_trade(
        Trade("coinbase:BTC-USD", f"t{n}", price, 1.0, "buy", T0 + n, T0 + n)
    )


async def next_data(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame["type"] in ("data", "snapshot"):
                return frame


async def test_fired_alert_reaches_owner_stream_and_webhook(tmp_path: Path) -> None:
    from delivery.receiver import Receiver  # noqa: PLC0415
    from delivery.receiver import running as receiving

    async with live_server(tmp_path) as (app, port):
        services: Services = app.state.services
        alice = await make_key(app, "alice", ["alerts:write", "webhooks:write"])
        bob = await make_key(app, "bob", ["alerts:write"])
        base = f"http://127.0.0.1:{port}"
        receiver = Receiver(secrets=[])
        async with (
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {alice}"}
            ) as client,
            receiving(receiver),
        ):
            hook = await client.post("/v1/webhooks", json={"url": receiver.url})
            assert hook.status_code == 201, hook.text
            receiver.secrets.append(hook.json()["secret"])
            assert (await client.post("/v1/alerts", json=PRICE_RULE)).status_code == 201
            ws_url = f"ws://127.0.0.1:{port}/v1/stream"
            async with (
                connect(ws_url, additional_headers={"Authorization": f"Bearer {alice}"}) as ws,
                connect(ws_url, additional_headers={"Authorization": f"Bearer {bob}"}) as other,
            ):
                for sock in (ws, other):
                    await sock.send(
                        orjson.dumps({"op": "subscribe", "id": 1, "channels": ["alerts"]}).decode()
                    )
                    assert orjson.loads(await sock.recv())["type"] == "subscribed"
                await trade(services, 99.0, 1)
                await trade(services, 101.0, 2)
                frame = await next_data(ws)
                assert frame["channel"] == "alerts" and frame["seq"] == 1
                event = frame["data"]
                assert event["type"] == "alert.fired"
                assert event["data"]["price"] == 101.0 and event["data"]["level"] == 100
                with_bob = asyncio.create_task(next_data(other, timeout=1.0))
                try:
                    await with_bob
                except TimeoutError:
                    pass
                else:
                    raise AssertionError("bob got alice's alert")
            async with asyncio.timeout(5):
                while not receiver.received:
                    await asyncio.sleep(0.02)
            assert receiver.received[0]["id"] == event["id"] == receiver.ids[0]
            events = (await client.get("/v1/alerts/events")).json()["data"]
            assert [e["id"] for e in events] == [event["id"]]
            metrics = (await client.get("/metrics")).text
            assert "cryptopulse_alerts_fired_total 1.0" in metrics
            assert "cryptopulse_webhook_delivered_total 1.0" in metrics
            # resume after the seq seen: nothing missed, nothing repeated
            async with connect(
                ws_url, additional_headers={"Authorization": f"Bearer {alice}"}
            ) as ws:
                op = {"op": "subscribe", "id": 2, "channels": ["alerts"], "resume": {"alerts": 0}}
                await ws.send(orjson.dumps(op).decode())
                assert orjson.loads(await ws.recv())["type"] == "subscribed"
                replayed = await next_data(ws)
                assert replayed["seq"] == 1 and replayed["data"]["id"] == event["id"]
