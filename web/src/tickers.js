// Live ticker table: composite tickers (and the instruments grades are computed on), with
// the analytics interval's signal and the trader/investor grades of each base symbol.

import { api } from "./api.js";
import { el, grade, price } from "./format.js";

const MAX_ROWS = 24;

export class TickerTable {
  constructor({ stream, onPick }) {
    this.stream = stream;
    this.onPick = onPick;
    this.body = document.querySelector("#tickers tbody");
    this.note = document.getElementById("tickers-note");
    this.rows = new Map(); // instrument -> {cells, ticker, signal}
    this.grades = new Map(); // symbol -> grade
    this.signalInterval = null;
  }

  async load() {
    const [tickers, grades, signals] = await Promise.all([
      api("/v1/tickers"),
      api("/v1/grades?limit=1000").catch(() => null),
      api("/v1/signals?limit=1000").catch(() => null),
    ]);
    const composites = tickers.data.filter((t) => !t.instrument.includes(":"));
    const names = composites.map((t) => t.instrument);
    for (const g of grades?.data ?? []) {
      this.grades.set(g.symbol, g);
      if (!names.includes(g.instrument)) names.push(g.instrument);
    }
    names.sort();
    names.slice(0, MAX_ROWS).forEach((name) => this.addRow(name));
    tickers.data.forEach((t) => this.setTicker(t));
    this.signalInterval = signals?.interval ?? null;
    (signals?.data ?? []).forEach((s) => this.setSignal(s));
    this.rows.forEach((_, name) => this.paintGrades(name));
    this.note.textContent = tickers.source ? `(${tickers.source})` : "";
    this.subscribe();
  }

  subscribe() {
    const names = [...this.rows.keys()];
    this.stream.setGroup("tickers", names.map((n) => `ticker:${n}`), {
      onMessage: (_, frame) => this.setTicker(frame.data),
    });
    this.stream.setGroup("signals", names.map((n) => `signals:${n}`), {
      onMessage: (_, frame) => this.setSignal(frame.data),
    });
    this.stream.setGroup("grades", ["grades"], {
      onMessage: (_, frame) => this.onGrades(frame.data),
      onGap: () => this.reloadGrades(),
    });
  }

  addRow(name) {
    const cells = {};
    const tr = el("tr", { attrs: { "data-instrument": name } });
    tr.append(el("td", { text: name, cls: "name" }));
    for (const key of ["last", "bid", "ask", "signal", "trader", "investor"]) {
      cells[key] = el("td", { text: "–", cls: key === "signal" ? "signal" : "num" });
      tr.append(cells[key]);
    }
    tr.addEventListener("click", () => this.onPick(name));
    this.body.append(tr);
    this.rows.set(name, { tr, cells });
  }

  setTicker(ticker) {
    const row = this.rows.get(ticker.instrument);
    if (!row) return;
    const before = row.last;
    row.last = ticker.last;
    row.cells.last.textContent = price(ticker.last);
    row.cells.bid.textContent = price(ticker.bid);
    row.cells.ask.textContent = price(ticker.ask);
    if (before !== undefined && ticker.last !== before) {
      row.cells.last.dataset.move = ticker.last > before ? "up" : "down";
    }
    row.tr.dataset.updated = String(Date.now());
  }

  setSignal(signal) {
    if (this.signalInterval && signal.interval !== this.signalInterval) return;
    const row = this.rows.get(signal.instrument);
    if (!row || !signal.state) return;
    row.cells.signal.textContent = `${signal.state} ${(signal.strength ?? 0).toFixed(2)}`;
    row.cells.signal.dataset.state = signal.state;
    row.cells.signal.title = `rule: ${signal.rule ?? "none"}`;
    if (row.last === undefined && signal.close != null) row.cells.last.textContent = price(signal.close);
  }

  onGrades(message) {
    if (message?.event !== "grades") return; // band_change events precede the table
    message.data.forEach((g) => this.grades.set(g.symbol, g));
    this.rows.forEach((_, name) => this.paintGrades(name));
  }

  async reloadGrades() {
    const grades = await api("/v1/grades?limit=1000").catch(() => null);
    if (grades) this.onGrades({ event: "grades", data: grades.data });
  }

  paintGrades(name) {
    const row = this.rows.get(name);
    const base = name.split(":").pop().split("-")[0];
    const g = this.grades.get(base);
    if (!row || !g) return;
    row.cells.trader.textContent = grade(g.trader);
    row.cells.investor.textContent = grade(g.investor);
    row.cells.trader.dataset.band = g.trader?.band ?? "";
    row.cells.investor.dataset.band = g.investor?.band ?? "";
    row.cells.trader.title = g.trader?.label ?? "";
    row.cells.investor.title = g.investor?.label ?? "";
  }

  names() {
    return [...this.rows.keys()];
  }
}
