"""The docs site builds (`mkdocs build --strict`, the API reference generated from the
OpenAPI document), and the code samples run against a real server.

A sample is a fenced `python`, `sh` or `bash` block. On the pages this suite owns, every
sample is preceded by `<!-- run -->` (executed here) or `<!-- norun: why -->`; the README's
"Try it" curls and its WebSocket client run too. Samples are written for `make serve`
(`http://127.0.0.1:8000`, `data/first-key.txt`); the test points them at its own server
and working directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from web.served import Served, serve

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ("index.md", "quickstart.md", "concepts.md", "api.md")  # pages whose samples we own
FENCE = re.compile(
    r"(?:<!-- (?P<mark>run|norun: [^>]*?) -->\n)?```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```",
    re.S | re.M,
)
SAMPLE_LANGS = {"python", "sh", "bash"}

pytestmark = pytest.mark.timeout(150)


@dataclass
class Sample:
    page: str
    number: int
    lang: str
    mark: str | None
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}#{self.number}"


def samples(path: Path) -> list[Sample]:
    found = []
    for match in FENCE.finditer(path.read_text()):
        if match["lang"] in SAMPLE_LANGS:
            number = len(found) + 1
            found.append(Sample(path.name, number, match["lang"], match["mark"], match["code"]))
    return found


RUNNABLE = [s for page in PAGES for s in samples(DOCS / page) if s.mark == "run"]


# Samples on the other pages (their owners' files, which carry no marks) and why they are
# not run verbatim here. A page that gains samples fails the test below until it is listed.
OTHER_PAGES = {
    "api-analytics.md": "run by test_api_analytics_curls_on_the_anonymous_plan",
    "benchmarks.md": "minutes of benchmark (`make bench`); tests/test_bench.py runs it small",
    "indicators.md": "a fragment: `closed_candle` and `candles` are the reader's",
    "models.md": "trains models (minutes) and needs a model file of the reader's",
    "sdk.md": "not run yet: `KEY` is the reader's, the stream loop is endless, and the "
    "coinbase: instruments need live feeds (its owner's tests/client run the SDK)",
    "mcp.md": "not run yet: top-level `await` and `KEY` are the reader's (tests/mcp run the "
    "same calls)",
    "onchain.md": "needs the reader's own RPC endpoint (YOUR-ENDPOINT)",
    "sectors.md": "`cryptopulse serve` with the reader's token file: runs until stopped",
    "signals.md": "the shape of a record, not code",
}


def test_every_page_with_samples_runs_them_or_says_why_not() -> None:
    with_samples = {
        page.name
        for page in DOCS.glob("*.md")
        if page.name not in PAGES and any(s.mark is None for s in samples(page))
    }
    assert with_samples == set(OTHER_PAGES), "list the page in OTHER_PAGES, or run its samples"


def test_every_sample_on_our_pages_is_marked_run_or_norun_with_a_reason() -> None:
    for page in PAGES:
        for sample in samples(DOCS / page):
            assert sample.mark is not None, f"{sample.id} is neither <!-- run --> nor norun"
            if sample.mark != "run":
                assert len(sample.mark) > len("norun: ") + 10, f"{sample.id}: say why"
    assert len(RUNNABLE) >= 6


def test_site_builds_strict_with_the_api_reference_from_openapi(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from cryptopulse.api.app import create_app
    from cryptopulse.settings import Settings

    document = create_app(Settings()).openapi()
    reference = (site / "api" / "index.html").read_text()
    for path, item in document["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in reference, (method, path)
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name.lower()}' in reference.replace("_", "-") or name in reference
    # the theme loads nothing from another origin (no Google Fonts, no CDN)
    for page in site.rglob("*.html"):
        html = page.read_text()
        assert not re.search(r'<(?:link|script)[^>]+(?:href|src)="(?:https?:)?//', html), page


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("docs-server"), ("ETH-BTC", "LTC-BTC")) as running:
        # the samples read composite and simulator data: wait until both have some
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = httpx.get(f"{running.base}/v1/candles/BTC-USD?interval=1m", headers=running.auth)
            if got.status_code == 200 and got.json()["data"]:
                break
            time.sleep(0.3)
        yield running


@pytest.fixture
def workdir(tmp_path: Path, served: Served) -> Path:
    """What `make serve` leaves in the project: data/first-key.txt and .venv."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "first-key.txt").write_text(served.key + "\n")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return tmp_path


def run_sample(lang: str, code: str, served: Served, workdir: Path, timeout: float = 60) -> str:
    code = code.replace("127.0.0.1:8000", served.base.removeprefix("http://"))
    if lang == "python":
        argv = [sys.executable, "-c", code]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(
        argv, cwd=workdir, env=served.env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("sample", RUNNABLE, ids=[s.id for s in RUNNABLE])
def test_runnable_sample(sample: Sample, served: Served, workdir: Path) -> None:
    output = run_sample(sample.lang, sample.code, served, workdir)
    assert output.strip() or "test " in sample.code, f"{sample.id} printed nothing"


def readme_block(heading: str, lang: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    match = re.search(rf"^```{lang}\n(.*?)^```", section, re.S | re.M)
    assert match, (heading, lang)
    return match[1]


def test_readme_curl_examples(served: Served, workdir: Path) -> None:
    lines = readme_block("## Try it", "sh").splitlines()
    setup, curls = lines[0], [line for line in lines if line.startswith("curl ")]
    assert setup.startswith("KEY=") and len(curls) >= 6
    bodies = []
    for curl in curls:
        command = curl.split("  #")[0]
        code = f"{setup}\n{command} -w '\\n%{{http_code}}'"
        body, status = run_sample("sh", code, served, workdir).rsplit("\n", 1)
        if "coinbase:" in command:
            # A live-feed example: offline (the simulator) that venue has no instrument.
            assert status == "404" and '"type"' in body, (curl, status, body)
        else:
            assert status == "200", (curl, status, body)
        bodies.append(body)
    joined = "\n".join(bodies)
    assert '"mode":"simulated"' in joined and '"source":"simulated"' in joined
    assert '"scopes"' in joined  # /v1/me


def test_readme_websocket_client_streams_until_stopped(served: Served, workdir: Path) -> None:
    # The README's client loops forever (it reconnects and resumes): run it, read a few
    # messages, stop it.
    code = readme_block("A WebSocket client", "python")
    code = code.replace("127.0.0.1:8000", served.base.removeprefix("http://"))
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        cwd=workdir,
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(lines) < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert len(lines) >= 4, lines
    assert all(line.startswith(("trades:sim:BTC-USD ", "candles:BTC-USD:1m ")) for line in lines)


def test_api_analytics_curls_on_the_anonymous_plan(tmp_path: Path) -> None:
    # docs/api-analytics.md calls without a key: a server with CRYPTOPULSE_ANONYMOUS_PLAN.
    code = re.search(r"^```sh\n(.*?)^```", (DOCS / "api-analytics.md").read_text(), re.S | re.M)
    assert code
    pairs = ("ETH-BTC", "LTC-BTC", "XMR-BTC", "ZEC-BTC")
    extra = {"CRYPTOPULSE_ANONYMOUS_PLAN": "public"}
    with serve(tmp_path, pairs, extra) as running:
        for curl in code[1].splitlines():
            line = curl.replace("127.0.0.1:8000", running.base.removeprefix("http://"))
            output = run_sample("sh", f"{line} -f -w '\\n%{{http_code}}'", running, tmp_path)
            assert output.endswith("\n200"), (curl, output[-500:])
