// Boot: log in with an API key kept in session storage, then start one stream connection
// shared by the panels (ticker table, chart, sector heatmap, alerts).

import { AlertsPanel } from "./alerts.js";
import { ApiError, api, forgetKey, storeKey, storedKey } from "./api.js";
import { CandleChart } from "./chart.js";
import { el } from "./format.js";
import { SectorHeatmap } from "./sectors.js";
import { Stream } from "./stream.js";
import { TickerTable } from "./tickers.js";

const $ = (id) => document.getElementById(id);

async function boot() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    login($("key").value.trim());
  });
  $("logout").addEventListener("click", logout);
  if (storedKey()) await start();
  else showLogin();
}

async function login(key) {
  try {
    await api("/v1/me", { key });
  } catch (error) {
    $("login-error").textContent = error instanceof ApiError && error.status === 401
      ? "That key was not accepted." : `Log-in failed: ${error.message}`;
    return;
  }
  storeKey(key);
  $("key").value = "";
  await start();
}

function logout() {
  forgetKey();
  location.reload();
}

function showLogin(message = "") {
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

async function start() {
  let me;
  try {
    me = await api("/v1/me");
  } catch {
    forgetKey();
    showLogin("Your session's key is no longer accepted.");
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${me.account} · ${me.plan?.name ?? ""}`;
  const stream = new Stream({
    token: storedKey,
    onState: (state, detail) => {
      $("conn").textContent = detail ? `${state} (${detail})` : state;
      $("conn").dataset.state = state;
    },
    onAuthFailed: () => {
      stream.stop();
      forgetKey();
      showLogin("The server refused the key (revoked or expired).");
    },
  });
  const dashboard = await panels(stream);
  window.cryptopulse = { stream, ...dashboard }; // for the browser tests and the console
  stream.start();
}

async function panels(stream) {
  const chart = new CandleChart({ stream, container: $("chart"), status: $("chart-status") });
  const picker = $("chart-instrument");
  const interval = $("chart-interval");
  const show = () => chart.show(picker.value, interval.value).catch((e) => chart.say(e.message));
  const table = new TickerTable({
    stream,
    onPick: (name) => {
      picker.value = name;
      show();
    },
  });
  const alerts = new AlertsPanel({ stream, instrument: () => picker.value });
  const sectors = new SectorHeatmap({ stream });
  const [instruments, ready] = await Promise.all([
    api("/v1/instruments"),
    api("/readyz").catch(() => ({ mode: "not ready" })),
  ]);
  $("mode").textContent = ready.mode;
  picker.replaceChildren(...instruments.data.map((i) => el("option", { text: i.instrument })));
  await table.load();
  picker.value = table.names()[0] ?? instruments.data[0]?.instrument ?? "";
  const followPicker = () => ($("alert-instrument").textContent = picker.value);
  picker.addEventListener("change", () => {
    followPicker();
    show();
  });
  interval.addEventListener("change", show);
  const boxes = [...$("chart-indicators").querySelectorAll("input")];
  const overlays = () => chart.setOverlays(boxes.filter((b) => b.checked).map((b) => b.value));
  boxes.forEach((box) => box.addEventListener("change", overlays));
  followPicker();
  chart.setOverlays(boxes.filter((b) => b.checked).map((b) => b.value));
  await Promise.all([show(), sectors.load(), alerts.load()]);
  return { chart, table, alerts, sectors };
}

boot();
