"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the
real `cryptopulse serve --source sim` process with imported real candles.

Every test records the requests the page makes and fails if one leaves the server's
origin, and fails on a console error or a CSP violation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect, sync_playwright

from web.served import Served, free_port, serve

PAIRS = ("ETH-BTC", "LTC-BTC", "XMR-BTC", "ZEC-BTC")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UP, DOWN = (38, 166, 154), (239, 83, 80)

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("dashboard"), PAIRS) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing (.ci/run installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with every request, WebSocket frame and console problem recorded."""

    def __init__(self, browser: Browser, served: Served) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page: Page = self.context.new_page()
        self.urls: list[str] = []
        self.problems: list[str] = []
        self.sent: list[list[dict[str, Any]]] = []  # per WebSocket, the ops sent
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on("websocket", self._websocket)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("console", self._console)
        self.origin = served.base

    def _websocket(self, ws: WebSocket) -> None:
        self.urls.append(ws.url)
        ops: list[dict[str, Any]] = []
        self.sent.append(ops)
        ws.on("framesent", lambda payload: ops.append(json.loads(payload)))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def login(self, key: str) -> None:
        self.page.goto(self.origin + "/")
        self.page.fill("#key", key)
        self.page.click("#login-form button")
        expect(self.page.locator("#conn")).to_have_text("live", timeout=15_000)

    def assert_clean(self) -> None:
        ws_origin = self.origin.replace("http://", "ws://")
        outside = [u for u in self.urls if not u.startswith((self.origin + "/", ws_origin + "/"))]
        assert not outside, f"requests left the origin: {outside}"
        assert not self.problems, self.problems

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser, served: Served) -> Iterator[Watched]:
    page = Watched(browser, served)
    yield page
    page.close()


def canvas_colours(page: Page, colours: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    """Pixels of each colour (±6 per channel) drawn on the chart's canvases."""
    return dict(
        page.evaluate(
            """(colours) => {
                const counts = Object.fromEntries(Object.keys(colours).map((k) => [k, 0]));
                for (const canvas of document.querySelectorAll("#chart canvas")) {
                    if (!canvas.width || !canvas.height) continue;
                    const px = canvas.getContext("2d")
                        .getImageData(0, 0, canvas.width, canvas.height).data;
                    for (let i = 0; i < px.length; i += 4) {
                        for (const [name, [r, g, b]] of Object.entries(colours)) {
                            if (Math.abs(px[i] - r) <= 6 && Math.abs(px[i + 1] - g) <= 6
                                && Math.abs(px[i + 2] - b) <= 6 && px[i + 3] > 200) {
                                counts[name] += 1;
                            }
                        }
                    }
                }
                return counts;
            }""",
            colours,
        )
    )


def test_page_is_served_with_a_strict_policy(served: Served) -> None:
    page = httpx.get(served.base + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert "<script>" not in page.text  # the only script is /assets/main.js
    assert httpx.get(served.base + "/assets/main.js").status_code == 200
    # the API keeps its own strict policy; the dashboard is not in the OpenAPI document
    api = httpx.get(served.base + "/healthz")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert "/" not in httpx.get(served.base + "/openapi.json").json()["paths"]
    assert httpx.get(served.base + "/nope").status_code == 404


def test_live_prices_chart_indicators_levels_grades_and_sectors(
    watched: Watched, served: Served, tmp_path: Path
) -> None:
    page = watched.page
    watched.login(served.key)
    # prices update from the simulator
    last = page.locator('#tickers tr[data-instrument="BTC-USD"] td').nth(1)
    expect(last).not_to_have_text("–", timeout=10_000)
    first = last.inner_text()
    expect(last).not_to_have_text(first, timeout=15_000)
    # grades and signals of the imported pairs
    eth = page.locator('#tickers tr[data-instrument="binance:ETH-BTC"]')
    expect(eth.locator("td").nth(5)).to_have_text(re.compile(r"^\d+$"), timeout=20_000)
    signal = re.compile(r"^(bullish|bearish|neutral) \d\.\d\d$")
    expect(eth.locator("td.signal")).to_have_text(signal, timeout=20_000)
    # sector heatmap from the imported history
    expect(page.locator("#heatmap .tile").first).to_be_visible(timeout=20_000)
    tiles = page.locator("#heatmap .tile")
    assert tiles.count() >= 2
    assert "%" in tiles.first.inner_text()

    # a chart of real candles with volume, indicators and support/resistance
    page.select_option("#chart-instrument", "binance:ETH-BTC")
    expect(page.locator("#chart-status")).to_contain_text("500 candles", timeout=20_000)
    page.wait_for_timeout(500)  # the chart paints on the next animation frame
    blue = {"ema": (66, 165, 245)}
    before = canvas_colours(page, blue)["ema"]
    page.check('#chart-indicators input[value="ema"]')
    page.check('#chart-indicators input[value="bb"]')
    page.wait_for_function("() => window.cryptopulse.chart.lines.size === 5", timeout=20_000)
    page.wait_for_function("() => window.cryptopulse.chart.levelLines.length > 0", timeout=20_000)
    page.wait_for_timeout(500)  # the chart paints on the next animation frame
    counts = canvas_colours(page, {"up": UP, "down": DOWN, **blue})
    assert counts["up"] > 500 and counts["down"] > 500, counts  # candles and volume
    assert counts["ema"] > before + 300, (before, counts)  # the fast EMA's line
    page.locator("#chart").screenshot(path=tmp_path / "chart.png")
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    assert (tmp_path / "chart.png").stat().st_size > 10_000

    # the simulated composite's chart follows the candles channel
    page.select_option("#chart-instrument", "BTC-USD")
    page.wait_for_function("() => window.cryptopulse.chart.updates > 2", timeout=20_000)
    watched.assert_clean()


def test_key_lives_in_the_session_only_and_a_bad_key_is_refused(
    watched: Watched, served: Served
) -> None:
    page = watched.page
    page.goto(served.base + "/")
    page.fill("#key", "cpk_live_not-a-key")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_contain_text("not accepted")
    watched.problems.clear()  # the 401 of that attempt is expected
    watched.login(served.key)
    stored = page.evaluate("[sessionStorage.getItem('cryptopulse.key'), localStorage.length]")
    assert stored == [served.key, 0]
    assert served.key not in page.context.cookies().__repr__()
    page.reload()  # same tab: still logged in
    expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
    other = page.context.new_page()  # a new tab has its own session storage
    other.goto(served.base + "/")
    expect(other.locator("#login")).to_be_visible()
    other.close()
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    watched.assert_clean()


def test_reconnect_resumes_every_channel_from_the_last_seq(
    watched: Watched, served: Served
) -> None:
    page = watched.page
    watched.login(served.key)
    page.wait_for_function("() => window.cryptopulse.chart.updates > 1", timeout=20_000)
    seen = page.evaluate("Object.fromEntries(window.cryptopulse.stream.lastSeq)")
    page.evaluate("window.cryptopulse.stream.ws.close(4000, 'test')")
    page.wait_for_function("() => window.cryptopulse.stream.reconnects === 1")
    expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
    for _ in range(100):  # the ops of the new connection, as the browser sent them
        if len(watched.sent) == 2 and sum(o["op"] == "subscribe" for o in watched.sent[1]) >= 5:
            break
        page.wait_for_timeout(100)
    first, second = watched.sent
    assert first[0]["op"] == "auth" and second[0]["op"] == "auth"
    resumed: dict[str, int] = {}
    for op in second:
        if op["op"] == "subscribe":
            resumed.update(op["resume"])
    # every channel that had data resumes at (or, if more came meanwhile, after) its last seq
    assert seen and all(resumed[channel] >= seq for channel, seq in seen.items())
    # and frames keep coming after the reconnect
    before = page.evaluate("window.cryptopulse.chart.updates")
    page.wait_for_function(
        "(n) => window.cryptopulse.chart.updates > n", arg=before, timeout=20_000
    )
    watched.assert_clean()


def test_an_alert_made_on_the_page_fires_and_appears(watched: Watched, served: Served) -> None:
    page = watched.page
    watched.login(served.key)
    page.select_option("#chart-instrument", "sim:BTC-USD")
    expect(page.locator("#alert-instrument")).to_have_text("sim:BTC-USD")
    ticker = httpx.get(f"{served.base}/v1/tickers/sim:BTC-USD", headers=served.auth).json()
    # Two one-shot rules bracketing the last price (±0.03 %: the simulator moves BTC about
    # 0.01 % a second, so the band is left within ~10 s on average, while the price moves
    # far less than that while the rules are made). One level alone, just above
    # the price, could be left behind for minutes when the walk turns away first.
    page.select_option("#alert-direction", "either")
    rule = page.locator("#alert-rules li")
    for count, factor in enumerate((1.0003, 0.9997), start=1):
        page.fill("#alert-level", repr(ticker["last"] * factor))
        page.click("#alert-form button")
        expect(rule).to_have_count(count)
    expect(rule.first).to_contain_text("price_cross: sim:BTC-USD either")
    event = page.locator("#alert-events li").first
    expect(event).to_contain_text("price_cross sim:BTC-USD @", timeout=60_000)
    # a one-shot rule: the one that fired says so
    expect(page.locator("#alert-rules li", has_text="fired").first).to_be_visible(timeout=10_000)
    assert event.get_attribute("data-event")
    # the same event the REST history has
    events = httpx.get(f"{served.base}/v1/alerts/events", headers=served.auth).json()["data"]
    assert event.get_attribute("data-event") in {e["id"] for e in events}
    watched.assert_clean()


def test_the_page_rides_out_a_server_restart(browser: Browser, tmp_path: Path) -> None:
    # The in-memory bus starts its seqs again after a restart: the page resumes with seqs
    # from the future, gets gap + snapshot, refetches the chart and goes on live.
    port = free_port()
    with serve(tmp_path, port=port) as first:
        watched = Watched(browser, first)
        page = watched.page
        watched.login(first.key)
        page.wait_for_function("() => window.cryptopulse.chart.updates > 1", timeout=20_000)
    # the server drained with 1001; the page is trying again meanwhile
    expect(page.locator("#conn")).to_contain_text("reconnecting", timeout=10_000)
    with serve(tmp_path, port=port):
        expect(page.locator("#conn")).to_have_text("live", timeout=30_000)
        before = page.evaluate("window.cryptopulse.chart.updates")
        page.wait_for_function(
            "(n) => window.cryptopulse.chart.updates > n", arg=before, timeout=20_000
        )
        assert page.evaluate("window.cryptopulse.stream.reconnects") >= 1
    # Refused connections while the server was down are expected console errors.
    watched.problems = [p for p in watched.problems if "WebSocket connection" not in p]
    watched.assert_clean()
    watched.close()
