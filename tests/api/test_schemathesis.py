"""schemathesis over the whole OpenAPI document with a valid admin key, against a real
uvicorn server on 127.0.0.1: no 5xx, responses match the schema, bad input is refused.

CI runs 100 cases per operation; locally, for 1,000:
    SCHEMATHESIS_EXAMPLES=1000 .venv/bin/pytest tests/api/test_schemathesis.py -p no:timeout
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from authkit import make_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.security.scopes import ALL_SCOPES

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "100"))
# Opaque cursors: any string fits the schema, only the ones we issued are valid (422).
# `ignored_auth` sends requests without the key on purpose; the matrix test covers that.
EXCLUDED = [checks.positive_data_acceptance, checks.ignored_auth]


class LiveServer:
    def __init__(self, tmp: Path) -> None:
        plans = {"fuzz": {"rpm": 10**7, "burst": 10**6, "monthly_quota": 10**9}}
        self.settings = make_settings(tmp, plans=plans, auth_failures_per_minute=10**6)
        self.app = create_app(self.settings, lambda s: Services.create(s, sources=[]))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve(),)
        )
        self.key = ""

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        services: Services = self.app.state.services
        new = asyncio.run_coroutine_threadsafe(
            create_key(
                services.access.db,
                account="fuzzer",
                name="schemathesis",
                scopes=sorted(ALL_SCOPES),
                plan="fuzz",
                plans=set(services.access.plans),
                actor="test",
            ),
            self.loop,
        ).result(10)
        self.key = new.key
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    server = LiveServer(tmp_path_factory.mktemp("schemathesis"))
    base = server.start()
    try:
        yield base, server.key
    finally:
        server.stop()


def test_every_operation_conforms(live: tuple[str, str]) -> None:
    base, key = live
    headers = {"Authorization": f"Bearer {key}"}
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            if case.method == "DELETE":
                # Never revoke the fuzzer's own key: every later case would be a 401.
                case.path_parameters = {**(case.path_parameters or {}), "key_id": "zzNotAKey"}
            case.call_and_validate(
                base_url=base, headers=headers, timeout=10, excluded_checks=EXCLUDED
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
