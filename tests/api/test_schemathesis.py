"""schemathesis over the whole OpenAPI document with a valid admin key, against a real
uvicorn server on 127.0.0.1. Positive cases: no 5xx, responses match the schema. Negative
cases (input that breaks the schema): refused with a 4xx, never a 5xx.

CI runs 100 positive and 25 negative cases per operation (about 5,500 and 1,300 requests,
2-3 minutes); locally, for 1,000 positive and 250 negative per operation (20-30 minutes):
    SCHEMATHESIS_EXAMPLES=1000 .venv/bin/pytest tests/api/test_schemathesis.py --timeout 0
(`SCHEMATHESIS_NEGATIVE_EXAMPLES` sets the negative count on its own.) Cases are
derandomized: the same ones every run, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from authkit import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from cryptopulse.api import create_app
from cryptopulse.runtime import Services
from cryptopulse.security.management import create_key
from cryptopulse.security.scopes import ALL_SCOPES

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "100"))
# Negative cases (input that breaks the schema) per operation; they only need to be refused.
NEGATIVE_EXAMPLES = int(os.environ.get("SCHEMATHESIS_NEGATIVE_EXAMPLES", str(EXAMPLES // 4)))
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


def runner(
    operation: Any, mode: GenerationMode, base: str, key: str, seen: list[int]
) -> Callable[[], None]:
    """The hypothesis test of one operation; `seen` collects one entry per case run."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES if mode is GenerationMode.POSITIVE else NEGATIVE_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # CI runs the same cases every time; failures reproduce
    )
    def run(case: schemathesis.Case) -> None:
        seen.append(1)
        if case.method == "DELETE":
            # Never revoke the fuzzer's own key: every later case would be a 401.
            case.path_parameters = {**(case.path_parameters or {}), "key_id": "zzNotAKey"}
        case.call_and_validate(
            base_url=base,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
            excluded_checks=EXCLUDED,
        )

    return run  # type: ignore[no-any-return]


def fuzz(base: str, key: str, mode: GenerationMode) -> tuple[list[str], dict[str, int]]:
    """Run every operation of the document; the failures, and the cases run per operation
    (-1 for an operation without any input: hypothesis stops after one case)."""
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    counts: dict[str, int] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        has_input = any(True for _ in operation.iter_parameters()) or bool(operation.body)
        if not has_input and mode is GenerationMode.NEGATIVE:
            continue  # nothing to break
        seen: list[int] = []
        try:
            runner(operation, mode, base, key, seen)()
        except Unsatisfiable:
            pass  # no input of this operation can be made invalid (reported as 0 cases)
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
        counts[operation.label] = len(seen) if has_input else -1
    return failures, counts


@pytest.mark.timeout(420)  # a cap for slow machines: about 2.5 minutes in all here
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_conforms(live: tuple[str, str], mode: GenerationMode) -> None:
    """Positive: valid input gets no 5xx and a response that matches the document.
    Negative: input that breaks the schema is refused with a 4xx, never a 5xx."""
    base, key = live
    failures, counts = fuzz(base, key, mode)
    assert len(counts) >= 10
    assert not failures, "\n\n".join(failures)
    # Hypothesis may stop early when an operation's input space is small (an enum, a
    # bounded int): then it has tried all of it. Elsewhere, EXAMPLES cases each.
    wanted = EXAMPLES if mode is GenerationMode.POSITIVE else NEGATIVE_EXAMPLES
    short = {label: n for label, n in counts.items() if 0 <= n < wanted}
    assert len(short) <= len(counts) // 4, f"fewer than {wanted} cases: {short}"
