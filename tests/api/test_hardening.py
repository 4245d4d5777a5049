"""Hardening of the real app: body limit (413), security headers, strict CORS, the docs
switch, and production refusing placeholder secrets at start (OWASP API4, API8)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from authkit import http, make_key, make_settings, running
from fastapi.routing import APIRoute
from pydantic import ValidationError
from typer.testing import CliRunner

from cryptopulse.cli import app as cli
from cryptopulse.settings import PLACEHOLDER_SECRET, Settings

LIMIT = 2048
ALLOWED = "https://dash.example.com"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}
CSP = "default-src 'none'; frame-ancestors 'none'"


def assert_hardened(response: httpx.Response, csp: bool = True) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.url)
    assert response.headers.get("content-security-policy") == (CSP if csp else None)
    assert "no-store" in response.headers["cache-control"] or response.request.url.path == "/docs"
    assert response.headers["x-request-id"] and response.headers["api-version"] == "1"
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


async def test_request_ids_and_latency_series_stay_bounded(tmp_path: Path) -> None:
    """A request without an id gets a fresh one; latency series are labelled by route
    template and a known method, so odd method tokens or paths add no series each."""
    from cryptopulse.api.metrics import REGISTRY

    def series(method: str) -> float:
        value = REGISTRY.get_sample_value(
            "cryptopulse_http_request_duration_seconds_count",
            {"method": method, "route": "unmatched", "status": "404"},
        )
        return value or 0.0

    async with running(make_settings(tmp_path)) as app, http(app, None) as client:
        ids = {(await client.get("/nowhere")).headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
        before = series("OTHER")
        for n in range(5):
            response = await client.request(f"FOO{n}", f"/nowhere/{n}")
            assert response.status_code == 404
        assert series("OTHER") == before + 5
        assert not any(
            sample.labels.get("method", "").startswith("FOO")
            for metric in REGISTRY.collect()
            for sample in metric.samples
        )


# --- 413 --------------------------------------------------------------------------------


async def test_oversize_bodies_get_413_declared_or_streamed(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_request_bytes=LIMIT)) as app:
        admin = await make_key(app, "operator", ["admin"], "enterprise")
        async with http(app, admin) as client:
            big = {"name": "x" * LIMIT, "scopes": ["market:read"]}
            response = await client.post("/v1/admin/keys", json=big)
            assert response.status_code == 413
            problem = response.json()
            assert problem["status"] == 413 and problem["title"] == "Content Too Large"
            assert str(LIMIT) in problem["detail"] and problem["instance"] == "/v1/admin/keys"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["x-request-id"] == problem["request_id"]
            assert_hardened(response)

            async def chunks() -> AsyncIterator[bytes]:
                # No Content-Length: the limit must hold on the bytes that actually arrive.
                for _ in range(8):
                    yield b"grant_type=client_credentials&" + b"x" * 500

            response = await client.post(
                "/v1/oauth/token",
                content=chunks(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 413
            assert response.json()["status"] == 413

            response = await client.post(
                "/v1/admin/keys", headers={"content-length": "lots"}, content=b"{}"
            )
            assert response.status_code in (400, 413)

            # At the limit is fine: the body reaches validation (422 for a bad name).
            response = await client.post(
                "/v1/admin/keys", json={"name": "", "scopes": ["market:read"]}
            )
            assert response.status_code == 422
            response = await client.post(
                "/v1/admin/keys", json={"name": "ok", "scopes": ["market:read"], "plan": "free"}
            )
            assert response.status_code == 201


# --- security headers -------------------------------------------------------------------


async def test_security_headers_on_every_kind_of_response(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            for path, status in [
                ("/v1/me", 200),
                ("/v1/instruments", 200),
                ("/v1/tickers/nope:XX-YY", 404),
                ("/v1/candles/coinbase:BTC-USD?limit=0", 422),
                ("/v1/admin/keys", 403),
                ("/healthz", 200),
                ("/openapi.json", 200),
            ]:
                response = await client.get(path)
                assert response.status_code == status, (path, response.text)
                assert_hardened(response)
            response = await client.get("/v1/me", headers={"Authorization": "Bearer nope"})
            assert response.status_code == 401
            assert_hardened(response)
            assert response.headers["www-authenticate"].startswith('Bearer realm="cryptopulse"')
            # The interactive docs load a CDN's scripts: no CSP there, the rest applies.
            response = await client.get("/docs")
            assert response.status_code == 200
            assert_hardened(response, csp=False)


async def test_errors_never_leak_internals(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            for response in [
                await client.get("/v1/candles/coinbase:BTC-USD?cursor=%00%ff"),
                await client.get("/v1/nothing-here"),
                await client.post("/v1/oauth/token", content=b"\xff\xfe", headers={}),
                await client.get("/v1/me", headers={"Authorization": "Bearer " + "A" * 300}),
            ]:
                assert response.status_code in (400, 401, 404, 422), response.text
                text = response.text
                for leak in ("Traceback", 'File "', "sqlalchemy", "cryptopulse.api", '.py"'):
                    assert leak not in text, (leak, text)
                assert response.headers["content-type"] == "application/problem+json"


# --- CORS -------------------------------------------------------------------------------


async def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, cors_origins=f"{ALLOWED}")) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            preflight = {
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            }
            response = await client.options(
                "/v1/instruments", headers={"Origin": ALLOWED, **preflight}
            )
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == ALLOWED
            assert "authorization" in response.headers["access-control-allow-headers"].lower()
            assert "GET" in response.headers["access-control-allow-methods"]

            response = await client.options(
                "/v1/instruments", headers={"Origin": "https://evil.example", **preflight}
            )
            assert response.status_code == 400
            assert "access-control-allow-origin" not in response.headers

            response = await client.get("/v1/instruments", headers={"Origin": ALLOWED})
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == ALLOWED
            exposed = response.headers["access-control-expose-headers"].lower()
            assert "x-ratelimit-remaining" in exposed and "x-request-id" in exposed
            assert "access-control-allow-credentials" not in response.headers

            response = await client.get("/v1/instruments", headers={"Origin": "https://evil.ex"})
            assert response.status_code == 200  # a browser, not the server, enforces CORS
            assert "access-control-allow-origin" not in response.headers


async def test_no_cors_headers_without_configured_origins(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            response = await client.get("/v1/instruments", headers={"Origin": ALLOWED})
            assert response.status_code == 200
            assert not any(h.startswith("access-control-") for h in response.headers)
            response = await client.options(
                "/v1/instruments",
                headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-origin" not in response.headers


# --- docs switch ------------------------------------------------------------------------


async def test_docs_disabled_removes_docs_and_openapi(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, docs_enabled=False)) as app:
        key = await make_key(app)
        async with http(app, key) as client:
            for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
                response = await client.get(path)
                assert response.status_code == 404, path
                assert_hardened(response, csp=path == "/openapi.json")
            assert (await client.get("/v1/instruments")).status_code == 200
    async with running(make_settings(tmp_path / "on")) as app, http(app) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


# --- production refuses placeholder secrets ---------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [PLACEHOLDER_SECRET, "short-but-random-1234", "please-change-this-secret-" + "a" * 20],
)
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="CRYPTOPULSE_JWT_SECRET"):
        Settings(environment="production", jwt_secret=secret)
    Settings(environment="development", jwt_secret=secret)  # development allows it


def test_production_serve_refuses_to_start_with_the_placeholder(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--source", "sim", "--port", "1"],
        env={
            "CRYPTOPULSE_ENVIRONMENT": "production",
            "CRYPTOPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.db",
            "CRYPTOPULSE_JWT_SECRET": "",
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert "CRYPTOPULSE_JWT_SECRET" in result.stderr
    assert not (tmp_path / "p.db").exists()  # refused before touching anything


async def test_production_makes_no_first_key(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        environment="production",
        jwt_secret="k" * 8 + "Zq3" * 10,
        bootstrap_key=True,
        first_key_file=str(tmp_path / "first-key.txt"),
    )
    async with running(settings) as app, http(app) as client:
        assert (await client.get("/v1/me")).status_code == 401
        assert await app.state.services.access.db.count_keys() == 0
    assert not (tmp_path / "first-key.txt").exists()


# --- outbound timeouts ------------------------------------------------------------------


def test_outbound_rest_calls_use_the_outbound_timeout() -> None:
    from cryptopulse.sources.auto import live_sources

    settings = Settings(outbound_timeout_s=2.5)
    sources = live_sources(settings, ["coinbase:BTC-USD", "binance:BTC-USDT", "kraken:BTC-USD"])
    timeouts = {s.name: getattr(s, "rest_timeout_s", None) for s in sources}
    # Kraken has no REST backfill: nothing to time out.
    assert timeouts == {"coinbase": 2.5, "binance": 2.5, "kraken": None}


# --- integers past the store's 64-bit columns -------------------------------------------


def _cursor(body: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


async def test_huge_integers_are_422_not_500(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        await app.state.services.store.record_instruments(["coinbase:BTC-USD"], "live", 1)
        key = await make_key(app, "operator", ["admin", "market:read"], "enterprise")
        huge = 2**64 - 1
        async with http(app, key) as client:
            for url in [
                f"/v1/candles/coinbase:BTC-USD?end={huge}",
                f"/v1/candles/coinbase:BTC-USD?start=1&end={2**70}",
                f"/v1/candles/coinbase:BTC-USD?cursor={_cursor({'d': 'a', 'p': huge})}",
                f"/v1/candles/coinbase:BTC-USD?cursor={_cursor({'d': 'd', 'p': -(2**63) - 5})}",
                f"/v1/trades/coinbase:BTC-USD?cursor={_cursor({'t': huge, 'i': 'x'})}",
            ]:
                response = await client.get(url)
                assert response.status_code == 422, (url, response.text)
            response = await client.post(
                "/v1/admin/keys", json={"name": "x", "scopes": ["market:read"], "expires_at": huge}
            )
            assert response.status_code == 422
            response = await client.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "c" * 65},
            )
            assert response.status_code == 422
            assert response.json()["errors"][0]["field"] == "client_id"


async def test_repeated_query_parameters_are_422(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        key = await make_key(app, "operator", ["admin", "market:read"], "enterprise")
        async with http(app, key) as client:
            for query in ("account=a&account=b", "days=3&d%61ys=4", "limit=5&x=1&limit=6"):
                path = "/v1/admin/keys" if "account" in query else "/v1/usage"
                response = await client.get(f"{path}?{query}")
                assert response.status_code == 422, query
                problem = response.json()
                assert problem["errors"][0]["message"] == "given more than once"
                assert problem["errors"][0]["field"] in ("account", "days", "limit")
                assert_hardened(response)
            assert (await client.get("/v1/admin/keys?account=a&x=1")).status_code == 200
            assert (await client.get("/v1/usage?days=3")).status_code == 200


# --- 500 --------------------------------------------------------------------------------


async def test_an_unexpected_error_is_a_hardened_problem_with_its_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(make_settings(tmp_path)) as app:

        async def broken() -> None:
            raise RuntimeError("a bug")

        # First in the routing table, so it sits behind the whole middleware stack like
        # any route (the dashboard's catch-all mount comes last).
        app.router.routes.insert(0, APIRoute("/v1/broken", broken))
        async with http(app) as client:
            response = await client.get("/v1/broken", headers={"X-Request-ID": "trace-42"})
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == 500 and problem["instance"] == "/v1/broken"
            assert "a bug" not in response.text  # no internals leak
            assert problem["request_id"] == response.headers["x-request-id"] == "trace-42"
            assert_hardened(response)
            # the app goes on serving
            assert (await client.get("/healthz")).status_code == 200
    assert any("a bug" in str(r.exc_info) for r in caplog.records if r.exc_info)
