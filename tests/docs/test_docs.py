"""The docs site builds (`mkdocs build --strict`, the API reference generated from the
OpenAPI document), and every code sample in the docs runs against a real server.

A sample is a fenced `python`, `sh` or `bash` block. Every sample in docs/ is preceded by
one of:

- `<!-- run -->`: executed verbatim here (`test_runnable_sample`);
- `<!-- run: how -->`: executed by a test of its own, in the way the mark says (it needs
  something besides the server: a local EVM node, a model file, a second server...);
  `DEDICATED` names that test;
- `<!-- norun: why -->`: only for what is not code to run (the shape of a record), listed
  in `NOT_RUN`, or a sample another test file runs, named in the mark and checked to read
  the page.

The README's samples carry no marks; `README_SAMPLES` says how each one is run. Samples are
written for `make serve` (`http://127.0.0.1:8000`, `data/first-key.txt`, `.venv`); the tests
point them at their own server and working directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import httpx
import pytest

from chain import local_chain
from mcp import Client, StdioServerParameters
from ml.factories import logistic_onnx
from web.served import DATA, Served, free_port, serve, server_env, wait_ready

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(page.name for page in DOCS.glob("*.md"))
FENCE = re.compile(
    r"(?:<!-- (?P<mark>run(?:: [^>]*?)?|norun: [^>]*?) -->\n)?```(?P<lang>\w*)[^\n]*\n"
    r"(?P<code>.*?)^```",
    re.S | re.M,
)
SAMPLE_LANGS = {"python", "sh", "bash"}
BIN = Path(sys.executable).parent

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


ALL = [s for page in PAGES for s in samples(DOCS / page)]
RUNNABLE = [s for s in ALL if s.mark == "run"]

# `<!-- run: how -->` samples and the test below that runs each one that way.
DEDICATED = {
    "api-analytics.md#1": "test_api_analytics_curls_on_the_anonymous_plan",
    "benchmarks.md#1": "test_benchmark_commands_run_with_tiny_sizes",
    "mcp.md#2": "test_mcp_stdio_command_serves_an_agent",
    "models.md#1": "test_models_quick_start_imports_trains_and_predicts",
    "models.md#2": "test_models_register_an_onnx_model_and_serve_it",
    "onchain.md#1": "test_onchain_configuration_follows_a_local_node",
    "quickstart.md#7": "test_mkdocs_serve_answers_and_the_strict_build_passes",
    "sectors.md#1": "test_sectors_tokens_file_is_merged_and_checked",
}
# `<!-- norun: why -->` samples that are not code to run.
NOT_RUN = {
    "signals.md#1": "not code: the shape of a Signal record",
    "quickstart.md#1": "run by .ci/run on the fresh clone: `make serve` until /readyz answers "
    "(simulated), then `make test`, which is this suite itself",
}
# How each README sample is run (they carry no marks; README.md is the project's front page).
README_SAMPLES = {
    2: "test_readme_curl_examples",
    3: "test_readme_websocket_client_streams_until_stopped",
    4: "test_readme_key_commands_create_list_rotate_revoke",
    5: "test_readme_command_line_synopsis_matches_the_cli",
    6: "test_readme_scale_out_commands_serve_from_two_replicas",
    7: "test_readme_sdk_snippet_streams_until_stopped",
}
README_NOT_RUN = {
    1: "run by .ci/run on the fresh clone: `make serve` until /readyz answers (simulated), "
    "then `make test`, which is this suite itself",
}


def test_every_sample_in_the_docs_is_run_or_is_not_code() -> None:
    tests = globals()
    for sample in ALL:
        if sample.mark is None:
            pytest.fail(f"{sample.id}: mark it <!-- run -->, <!-- run: how --> or norun")
        elif sample.mark.startswith("run: "):
            assert sample.id in DEDICATED, f"{sample.id}: name the test that runs it"
            assert DEDICATED[sample.id] in tests, DEDICATED[sample.id]
        elif sample.mark.startswith("norun: "):
            elsewhere = re.search(r"run by (tests/\S+\.py)", sample.mark)
            if elsewhere:  # another test file runs it: it must read this page
                assert sample.page in (ROOT / elsewhere[1]).read_text(), sample.id
            else:
                assert sample.id in NOT_RUN, f"{sample.id}: {sample.mark!r} is not a reason"
    marked = {s.id for s in ALL if s.mark and s.mark.startswith("run: ")}
    assert marked == set(DEDICATED), "a DEDICATED entry whose sample lost its mark"
    assert {s.id for s in ALL if s.mark and s.mark.startswith("norun")} >= set(NOT_RUN)
    assert len(RUNNABLE) >= 11


def test_every_readme_sample_is_run_or_says_why_not() -> None:
    numbers = {s.number for s in samples(ROOT / "README.md")}
    assert numbers == set(README_SAMPLES) | set(README_NOT_RUN), "say how it runs"
    assert all(name in globals() for name in README_SAMPLES.values())


def test_ci_runs_the_two_readme_commands_on_the_fresh_clone() -> None:
    # README#1 and quickstart.md#1 (`make serve`, `make test`) are run by .ci/run itself.
    ci = (ROOT / ".ci" / "run").read_text()
    assert "setsid make serve" in ci and '"mode"] == "simulated"' in ci
    assert ci.rstrip().endswith("make test")
    first = samples(ROOT / "README.md")[0].code
    assert "make serve" in first and "make test" in first


def test_site_builds_strict_with_the_api_reference_from_openapi(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build = dedicated("quickstart.md#7").code.splitlines()[1]
    assert build == ".venv/bin/mkdocs build --strict"  # quickstart.md: as written (+ -d)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)],
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


def test_mkdocs_serve_answers_and_the_strict_build_passes() -> None:
    # quickstart.md: `mkdocs serve` runs until stopped (the build is the test above).
    line = dedicated("quickstart.md#7").code.splitlines()[0].split("#")[0].split()
    assert line == [".venv/bin/mkdocs", "serve"]
    port = free_port()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    argv = [str(BIN / "mkdocs"), "serve", "-a", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "mkdocs serve exited"
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/quickstart/", timeout=2)
                if page.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mkdocs serve did not answer in 90 s"
            time.sleep(0.5)
        assert "A first key" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # models.md waits for a newly trained model: reload the registry every second
    extra = {"CRYPTOPULSE_ML_RELOAD_S": "1"}
    with serve(tmp_path_factory.mktemp("docs-server"), ("ETH-BTC", "LTC-BTC"), extra) as running:
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


def dedicated(sample_id: str) -> Sample:
    """The sample `sample_id` (page#number), which must be marked `<!-- run: ... -->`."""
    (sample,) = [s for s in ALL if s.id == sample_id]
    assert sample.mark and sample.mark.startswith("run: "), sample
    return sample


FLOAT = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
# What a sample must print (each pattern at least once), beyond exiting 0.
EXPECT = {
    "sdk.md#1": [rf"\A{FLOAT}\n((snapshot|data|refetch) {FLOAT}\n){{5}}\Z"],
    "sdk.md#2": [
        r"^404 unknown instrument 'nowhere:FOO-BAR'.* [0-9a-f]{32}$",
        r"^422 \[\('interval', \"Input should be",
    ],
    "sdk.md#3": [r"^[1-9]\d* trades in the last minute$", r"^(ETH|LTC) \w"],
    "mcp.md#1": [r"'get_price'.*'get_signals'", r'"instrument": "BTC-USD"', r'"last": \d'],
    "indicators.md#1": [rf"^rsi {FLOAT} macd {FLOAT} atr {FLOAT}$"],
}


@pytest.mark.parametrize("sample", RUNNABLE, ids=[s.id for s in RUNNABLE])
def test_runnable_sample(sample: Sample, served: Served, workdir: Path) -> None:
    output = run_sample(sample.lang, sample.code, served, workdir)
    assert output.strip() or "test " in sample.code, f"{sample.id} printed nothing"
    for pattern in EXPECT.get(sample.id, []):
        assert re.search(pattern, output, re.M), (sample.id, pattern, output[-2000:])


def test_expectations_name_runnable_samples() -> None:
    assert set(EXPECT) <= {s.id for s in RUNNABLE}


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


def read_lines(proc: subprocess.Popen[str], count: int, seconds: float) -> list[str]:
    """Up to `count` lines of the process's output within `seconds`, then kill it."""
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + seconds
        while len(lines) < count and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return lines


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
    lines = read_lines(proc, 4, 30)
    assert len(lines) >= 4, lines
    assert all(line.startswith(("trades:sim:BTC-USD ", "candles:BTC-USD:1m ")) for line in lines)


def test_api_analytics_curls_on_the_anonymous_plan(tmp_path: Path) -> None:
    # docs/api-analytics.md calls without a key: a server with CRYPTOPULSE_ANONYMOUS_PLAN.
    sample = dedicated("api-analytics.md#1")
    pairs = ("ETH-BTC", "LTC-BTC", "XMR-BTC", "ZEC-BTC")
    extra = {"CRYPTOPULSE_ANONYMOUS_PLAN": "public"}
    with serve(tmp_path, pairs, extra) as running:
        outputs = []
        for curl in sample.code.splitlines():
            line = curl.replace("127.0.0.1:8000", running.base.removeprefix("http://"))
            output = run_sample("sh", f"{line} -f -w '\\n%{{http_code}}'", running, tmp_path)
            assert output.endswith("\n200"), (curl, output[-500:])
            outputs.append(json.loads(output.rsplit("\n", 1)[0]))
    grades, privacy, correlations, indicators = outputs
    assert len(grades["data"]) == 3 and privacy["id"] == "privacy"
    assert correlations["instrument"] == "binance:ETH-BTC"
    assert [set(row["values"]) for row in indicators["data"]] == [{"rsi", "macd"}] * 2


def test_benchmark_commands_run_with_tiny_sizes() -> None:
    # `make bench` takes minutes: each documented command runs with sizes that take
    # seconds (later options win), `--help` as written.
    tiny = ["--instruments", "3", "--updates", "2", "--repeats", "2", "--window", "300"]
    commands = [
        line.split("  #")[0].split()
        for line in dedicated("benchmarks.md#1").code.splitlines()
        if line.strip()
    ]
    assert len(commands) == 2
    for argv in commands:
        assert argv[:3] == [".venv/bin/python", "-m", "bench"], argv
        args = argv[3:] if "--help" in argv else argv[3:] + tiny
        done = subprocess.run(
            [sys.executable, "-m", "bench", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        if "--help" in argv:
            assert "--instruments" in done.stdout and "--contenders" in done.stdout
        else:
            assert "| cryptopulse" in done.stdout and "talipp" in done.stdout, done.stdout


async def test_mcp_stdio_command_serves_an_agent(served: Served, workdir: Path) -> None:
    # The documented line is the tool process an agent starts: the SDK's stdio client runs
    # it (through bash, as written) and talks MCP over its stdin and stdout.
    code = dedicated("mcp.md#2").code
    code = code.replace("127.0.0.1:8000", served.base.removeprefix("http://"))
    params = StdioServerParameters(command="bash", args=["-c", code], env=served.env, cwd=workdir)
    async with Client(params) as mcp:
        tools = {tool.name for tool in (await mcp.list_tools()).tools}
        assert {"get_price", "get_candles", "get_grades", "create_alert"} <= tools
        result = await mcp.call_tool("get_price", {"instrument": "BTC-USD"})
        text = result.content[0].text  # type: ignore[union-attr]
        assert json.loads(text)["instrument"] == "BTC-USD", text


def models_sample(sample_id: str) -> str:
    """models.md reads the bundled candle files from ../shared/data, next to the project."""
    return dedicated(sample_id).code.replace("../shared/data", str(DATA))


def test_models_quick_start_imports_trains_and_predicts(served: Served, workdir: Path) -> None:
    output = run_sample("sh", models_sample("models.md#1"), served, workdir, timeout=120)
    assert "binance:ETH-BTC: 5760 5m candles upserted" in output
    # the wait loop's GET, the POST and /v1/models print JSON documents back to back
    decoder, documents, at = json.JSONDecoder(), [], output.index('{"instrument"')
    while at < len(output.rstrip()):
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
    single, batch, models = documents
    assert single["instrument"] == "binance:ETH-BTC" and single["model"]["name"] == "baseline"
    assert [p["instrument"] for p in batch["data"]] == ["binance:ETH-BTC"]
    assert batch["data"][0]["probability_up"] == single["probability_up"]
    assert 0 <= single["probability_up"] <= 1 and single["horizon"] == 12
    trained = [m for m in models["data"] if m["name"] == "baseline"]
    assert {m["instrument"] for m in trained} == {"binance:ETH-BTC"}
    assert all(m["scores"]["samples"] > 4000 for m in trained)


def test_models_register_an_onnx_model_and_serve_it(served: Served, workdir: Path) -> None:
    (workdir / "my-model.onnx").write_bytes(logistic_onnx([0.5, -2.0, 3.0], 0.1))
    output = run_sample("sh", models_sample("models.md#2"), served, workdir)
    assert "my-model" in output, output
    url = f"{served.base}/v1/predictions/binance:ETH-BTC?model=my-model"
    deadline = time.monotonic() + 30  # the server reloads its registry every second here
    while (got := httpx.get(url, headers=served.auth)).status_code == 404:
        assert time.monotonic() < deadline, got.text
        time.sleep(0.5)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["model"]["name"] == "my-model" and body["model"]["kind"] != "builtin"
    assert 0 <= body["probability_up"] <= 1 and body["horizon"] == 12


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def test_onchain_configuration_follows_a_local_node(tmp_path: Path) -> None:
    code = dedicated("onchain.md#1").code
    assert code.count("YOUR-ENDPOINT") == 2 and '"chain_id": 1,' in code
    async with local_chain() as node:
        sender, receiver = node.accounts[1], node.accounts[2]
        for _ in range(20):
            await node.send(sender, receiver, value=10**15)
            await node.mine()
        head = int(await node.rpc("eth_blockNumber"), 16)
        code = (
            code.replace("https://YOUR-ENDPOINT", node.url)
            .replace("wss://YOUR-ENDPOINT", node.ws_url)
            .replace('"chain_id": 1,', '"chain_id": 1337,')
        )
        port = free_port()
        env = {**server_env(tmp_path / "onchain.db"), "CRYPTOPULSE_PORT": str(port)}
        script = f"{code}\nexec .venv/bin/cryptopulse serve --source sim"
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "-c", script], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc, log)
            auth = {"Authorization": f"Bearer {(tmp_path / 'first-key.txt').read_text().strip()}"}
            async with httpx.AsyncClient(base_url=base, headers=auth, timeout=5) as http:
                deadline = time.monotonic() + 30
                while True:  # 12 confirmations: blocks 1 .. head - 12, stored in batches
                    chain = (await http.get("/v1/onchain/chains")).json()["data"][0]
                    got = await http.get("/v1/onchain/ethereum/metrics?interval=block&limit=100")
                    rows = got.json()["data"]
                    if len(rows) >= head - 11 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.3)
                assert chain["chain"] == "ethereum" and chain["connected"], chain
                assert chain["head"] == head and chain["processed"] == head - 12, chain
                assert chain["websocket"] and chain["tokens"][0]["symbol"] == "USDC"
            # backfill_blocks (300) reaches back to the genesis block, which has no transaction
            assert [row["number"] for row in rows] == list(range(head - 11)), rows
            assert rows[0]["tx_count"] == 0
            for row in rows[1:]:
                block = await node.rpc("eth_getBlockByNumber", hex(row["number"]), False)
                assert row["hash"] == block["hash"]
                assert row["tx_count"] == len(block["transactions"]) == 1
                assert row["active_addresses"] == 2 and row["gas_used"] == 21000
        finally:
            stop(proc)


TOKENS_FILE = """\
sectors:
  - {id: digital-gold, name: Digital gold, description: Scarce stores of value}
tokens:
  - symbol: BTC
    name: Bitcoin
    supply: {circulating: 19950000, total: 19950000, max: 21000000, as_of: "2025-12-01"}
    sectors: [l1, digital-gold]
  - symbol: PAXG
    name: PAX Gold
    supply: {circulating: 250000, total: 250000, max: null, as_of: "2025-12-01"}
    sectors: [digital-gold, rwa]
"""


def start_with_tokens(code: str, tmp: Path, tokens: str) -> tuple[subprocess.Popen[str], str]:
    (tmp / "my-tokens.yaml").write_text(tokens)
    port = free_port()
    env = {**server_env(tmp / "tokens.db"), "CRYPTOPULSE_PORT": str(port)}
    env |= {"CRYPTOPULSE_SOURCE": "sim", "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    (tmp / ".venv").symlink_to(Path(sys.executable).parent.parent)
    with (tmp / "serve.log").open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", code], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    return proc, f"http://127.0.0.1:{port}"


def test_sectors_tokens_file_is_merged_and_checked(tmp_path: Path) -> None:
    code = dedicated("sectors.md#1").code
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    proc, base = start_with_tokens(code, good, TOKENS_FILE)
    try:
        wait_ready(base, proc, good / "serve.log")
        auth = {"Authorization": f"Bearer {(good / 'first-key.txt').read_text().strip()}"}
        btc = httpx.get(f"{base}/v1/tokens/BTC", headers=auth).json()
        assert btc["supply"]["circulating"] == 19950000 and btc["supply"]["as_of"] == "2025-12-01"
        assert btc["sectors"] == ["l1", "digital-gold"]
        gold = httpx.get(f"{base}/v1/tokens?sector=digital-gold", headers=auth).json()["data"]
        assert [t["symbol"] for t in gold] == ["BTC", "PAXG"]
        eth = httpx.get(f"{base}/v1/tokens/ETH", headers=auth).json()  # shipped, kept
        assert eth["name"] == "Ethereum"
    finally:
        stop(proc)
    # A token naming a sector nobody defines stops the start, naming it.
    proc, _ = start_with_tokens(code, bad, TOKENS_FILE.replace("rwa]", "nowhere-sector]"))
    try:
        assert proc.wait(timeout=60) != 0
    finally:
        stop(proc)
    assert "nowhere-sector" in (bad / "serve.log").read_text()


def test_readme_key_commands_create_list_rotate_revoke(served: Served, workdir: Path) -> None:
    # As a reader runs them: optional [flags] given, KEY_ID the id `keys create` printed.
    lines = [
        line.split("  #")[0].strip()
        for line in readme_block("## Keys and plans", "sh").splitlines()
    ]
    create, listing, rotate, revoke = [re.sub(r"\[([^]]*)\]", r"\1", line) for line in lines]
    created = run_sample("sh", create, served, workdir)
    match = re.search(r"created key (\w+) for account 'me' \(plan pro", created)
    assert match, created
    key_id, key = match[1], created.strip().splitlines()[-1]
    me = httpx.get(f"{served.base}/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and set(me.json()["scopes"]) == {"market:read", "signals:read"}
    listed = run_sample("sh", listing, served, workdir)
    assert key not in listed  # never shows the keys
    rows = {row["key_id"]: row for row in json.loads(listed)}  # quickstart.md made one too
    assert rows[key_id]["name"] == "my-bot" and {row["account"] for row in rows.values()} == {"me"}
    rotated = run_sample("sh", rotate.replace("KEY_ID", key_id), served, workdir)
    new_key = rotated.strip().splitlines()[-1]
    assert new_key.startswith("cpk_live_") and new_key != key, rotated
    for credential in (key, new_key):  # the old key stays valid during the grace period
        got = httpx.get(f"{served.base}/v1/me", headers={"Authorization": f"Bearer {credential}"})
        assert got.status_code == 200, got.text
    run_sample("sh", revoke.replace("KEY_ID", key_id), served, workdir)
    deadline = time.monotonic() + 10
    while (
        got := httpx.get(f"{served.base}/v1/me", headers={"Authorization": f"Bearer {key}"})
    ).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key is still accepted"
        time.sleep(0.2)
    assert got.status_code == 401


def test_readme_command_line_synopsis_matches_the_cli() -> None:
    # A synopsis, not a script (`auto|live|...`, FILE): every command and option it names
    # exists in the CLI.
    from typer.testing import CliRunner

    from cryptopulse.cli import app

    runner = CliRunner()
    checked = 0
    for line in readme_block("## Command line", "sh").splitlines():
        words = re.sub(r"[][]", "", line.split("  #")[0]).split()
        assert words[0] == ".venv/bin/cryptopulse", line
        head, *alternatives = " ".join(words[1:]).split(" | ")
        group = head.split()[:1]  # `models list | register FILE`: siblings under `models`
        for parts in [head.split(), *(group + alt.split() for alt in alternatives)]:
            command = list(takewhile(lambda word: re.fullmatch(r"[a-z]+", word), parts))
            options = [word for word in parts if word.startswith("-")]
            result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
            assert result.exit_code == 0, (line, command, result.output)
            for option in options:
                found = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.output)
                assert found, (line, option, result.output)
            checked += 1
    assert checked >= 10


def test_readme_sdk_snippet_streams_until_stopped(served: Served, workdir: Path) -> None:
    # The README's snippet is a fragment (top-level `await`, the reader's KEY): run it in a
    # coroutine with the key from data/first-key.txt, read a few messages, stop it.
    snippet = readme_block("## SDK and MCP", "python")
    imports = [line for line in snippet.splitlines() if line.startswith("from ")]
    body = [line for line in snippet.splitlines() if line and not line.startswith("from ")]
    code = "\n".join(
        [
            "import asyncio",
            *imports,
            'KEY = open("data/first-key.txt").read().strip()',
            "async def main() -> None:",
            *("    " + line for line in body),
            "asyncio.run(main())",
        ]
    ).replace("127.0.0.1:8000", served.base.removeprefix("http://"))
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        cwd=workdir,
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = read_lines(proc, 4, 30)
    assert len(lines) >= 4, lines
    assert all(re.fullmatch(r"(snapshot|data|refetch) \d+(\.\d+)?\n", line) for line in lines), (
        lines
    )


def test_readme_scale_out_commands_serve_from_two_replicas(tmp_path: Path, workdir: Path) -> None:
    # As written, on a database and a Redis of the test's own and free ports; the `&`
    # processes run under one bash, stopped as a group.
    import psycopg

    from scaleout.cluster import ADMIN_PG
    from scaleout.services import RedisServer

    code = readme_block("## Scale-out", "sh")
    database = f"cp_docs_{os.getpid()}_{int(time.time())}"
    redis = RedisServer(tmp_path / "redis")
    api, ingest = [free_port(), free_port()], [free_port(), free_port()]
    code = (
        code.replace("127.0.0.1:5432/cryptopulse", f"127.0.0.1:5432/{database}")
        .replace("redis://127.0.0.1:6379/0", redis.url)
        .replace("--port 8000", f"--port {api[0]}")
        .replace("--port 8001", f"--port {api[1]}")
        .replace("--port 9101", f"--port {ingest[1]}")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
    env |= {
        "CRYPTOPULSE_INGEST_PORT": str(ingest[0]),  # the first shard's default port
        "CRYPTOPULSE_SOURCE": "sim",
        "CRYPTOPULSE_INSTRUMENTS": "coinbase:BTC-USD,binance:ETH-USDT",
        "CRYPTOPULSE_ANALYTICS_ENABLED": "false",
        "CRYPTOPULSE_FIRST_KEY_FILE": str(workdir / "data" / "cluster-key.txt"),
    }
    with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    redis.start()
    log = tmp_path / "cluster.log"
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"{code}\nwait"],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            for port in api:
                wait_ready(f"http://127.0.0.1:{port}", proc, log, timeout=90)
            key = (workdir / "data" / "cluster-key.txt").read_text().strip()
            auth = {"Authorization": f"Bearer {key}"}
            for port in api:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
                assert ready["role"] == "api", ready
                deadline = time.monotonic() + 30
                while True:
                    got = httpx.get(f"http://127.0.0.1:{port}/v1/tickers/BTC-USD", headers=auth)
                    if got.status_code == 200 or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert got.status_code == 200, got.text
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)
    finally:
        redis.stop()
        with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
