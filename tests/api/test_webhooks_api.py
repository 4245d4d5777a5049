"""`/v1/webhooks`: the secret shown once, SSRF refusals at registration, owner-only access,
plan limits, rotation, test-fire, the delivery log and manual redelivery (same id)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from authkit import http, make_key, make_settings, running

from cryptopulse.runtime import Services
from delivery.receiver import Receiver
from delivery.receiver import running as receiving


async def test_registration_refuses_private_targets(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app, "alice", ["webhooks:write"])
        async with http(app, key) as client:
            for url in (
                "http://127.0.0.1:8080/x",
                "http://2130706433/x",
                "http://[::ffff:169.254.169.254]/",
                "http://localhost/x",
                "file:///etc/passwd",
            ):
                response = await client.post("/v1/webhooks", json={"url": url})
                assert response.status_code == 422, url
                assert response.json()["errors"][0]["field"] == "url"
            ok = await client.post("/v1/webhooks", json={"url": "https://93.184.216.34/h"})
            assert ok.status_code == 201
            changed = await client.patch(
                f"/v1/webhooks/{ok.json()['id']}", json={"url": "http://10.1.2.3/"}
            )
            assert changed.status_code == 422


async def test_secret_once_owner_only_and_limits(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, webhook_allow_private_targets=True, plans={"tiny": {"webhooks": 1}}
    )
    async with running(settings) as app:
        alice = await make_key(app, "alice", ["webhooks:write"], plan="tiny")
        bob = await make_key(app, "bob", ["webhooks:write"])
        alerts_only = await make_key(app, "alice", ["alerts:write"])
        async with http(app, alice) as a, http(app, bob) as b, http(app, alerts_only) as c:
            created = await a.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/h"})
            assert created.status_code == 201
            body = created.json()
            assert body["secret"].startswith("whsec_")
            fetched = (await a.get(f"/v1/webhooks/{body['id']}")).json()
            assert "secret" not in fetched and fetched["enabled"] is True
            assert (
                await a.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"})
            ).status_code == 409
            for method, suffix in [
                ("GET", ""),
                ("PATCH", ""),
                ("DELETE", ""),
                ("POST", "/rotate"),
                ("GET", "/deliveries"),
                ("POST", "/test"),
            ]:
                kwargs = {"json": {}} if method == "PATCH" else {}
                response = await b.request(method, f"/v1/webhooks/{body['id']}{suffix}", **kwargs)
                assert response.status_code == 404, (method, suffix, response.text)
            assert (await c.get("/v1/webhooks")).status_code == 403


async def test_test_fire_rotation_and_redelivery(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, webhook_allow_private_targets=True, delivery_poll_interval_s=0.05
    )
    receiver = Receiver(secrets=[])
    async with running(settings) as app, receiving(receiver):
        services: Services = app.state.services
        assert services.delivery is not None  # the embedded worker, started by the lifespan
        key = await make_key(app, "alice", ["webhooks:write"])
        async with http(app, key) as client:
            hook = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
            old = hook["secret"]
            receiver.secrets.append(old)
            fired = await client.post(f"/v1/webhooks/{hook['id']}/test")
            assert fired.status_code == 202
            await until(lambda: len(receiver.received) == 1)
            assert receiver.received[0]["type"] == "webhook.test"
            rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate", json={"grace_s": 60})
            new = rotated.json()["secret"]
            assert new != old and rotated.json()["rotating_until"] is not None
            receiver.secrets[:] = [new]
            log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
            assert [d["status"] for d in log] == ["delivered"] and log[0]["last_status"] == 200
            again = await client.post(
                f"/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/redeliver"
            )
            assert again.status_code == 202
            await until(lambda: len(receiver.received) == 2)
            assert receiver.ids[0] == receiver.ids[1]  # same webhook-id
            assert len(receiver.signatures[1].split()) == 2  # old and new secret sign
            assert receiver.invalid == 0


async def until(check: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.02)
