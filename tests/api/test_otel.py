"""CRYPTOPULSE_OTEL_ENABLED: FastAPI's native OpenTelemetry spans through the globally
configured tracer provider when on (the hot requests included), none when off (the
default: its per-request checks cost ~10 % of a ticker request, docs/operations.md).

Each case runs in a process of its own: a tracer provider is global and set once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import asyncio, json, sys
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cryptopulse.api import create_app
from cryptopulse.domain.models import Trade
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


async def main() -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{sys.argv[1]}", source="sim",
                        bootstrap_key=False, anonymous_plan="free",
                        otel_enabled=sys.argv[2] == "on")
    app = create_app(settings, lambda s: Services.create(s, sources=[]))
    async with app.router.lifespan_context(app):
        services = app.state.services
        services.market.note_instrument("coinbase:BTC-USD", "replay")
        await services.pipeline.on_trade(Trade("coinbase:BTC-USD", "1", 1.0, 1.0, "buy", 1, 2))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses = [(await client.get(path)).status_code
                        for path in ("/healthz", "/v1/tickers/coinbase:BTC-USD")]
    spans = [s.name for s in exporter.get_finished_spans()]
    print(json.dumps({"statuses": statuses, "spans": spans}))


asyncio.run(main())
"""


@pytest.mark.parametrize("otel", ["on", "off"])
def test_otel_setting_turns_fastapi_tracing_on_and_off(tmp_path: Path, otel: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "otel.db"), otel],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200, 200]
    if otel == "on":
        # The ticker too: with tracing on, the hot path (api/_hot.py) leaves it to the stack.
        for path in ("/healthz", "/v1/tickers/{instrument}"):
            assert any(path in name for name in result["spans"]), result
    else:
        assert result["spans"] == [], result
