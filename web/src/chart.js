// Candlestick chart with volume, selectable indicator overlays (from /v1/indicators) and
// support/resistance price lines (from /v1/levels), kept live by the candles channel.

import { CandlestickSeries, HistogramSeries, LineSeries, createChart } from "lightweight-charts";
import { api, seg } from "./api.js";

export const UP = "#26a69a";
export const DOWN = "#ef5350";
const CANDLES = 500;

// Checkbox value -> indicator names of /v1/indicators and their line colours.
const OVERLAYS = {
  sma: { sma: "#f9a825" },
  ema: { ema_fast: "#42a5f5", ema_slow: "#ab47bc" },
  bb: { bb_upper: "#90a4ae", bb_middle: "#78909c", bb_lower: "#90a4ae" },
  donchian: { donchian_upper: "#8d6e63", donchian_middle: "#a1887f", donchian_lower: "#8d6e63" },
  vwap: { vwap: "#ffee58" },
};

const seconds = (ms) => Math.floor(ms / 1000);

export class CandleChart {
  constructor({ stream, container, status }) {
    this.stream = stream;
    this.status = status;
    this.chart = createChart(container, {
      autoSize: true,
      // The logo injects an inline <style> that the page CSP refuses; credited in the footer.
      layout: { background: { color: "#11161d" }, textColor: "#c9d1d9", attributionLogo: false },
      grid: { vertLines: { color: "#1c232c" }, horzLines: { color: "#1c232c" } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false,
    });
    // Volume in the bottom fifth, candles above it.
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
    this.lines = new Map(); // indicator name -> line series
    this.levelLines = [];
    this.overlays = new Set();
    this.showLevels = true;
    this.instrument = null;
    this.interval = "5m";
    this.lastTime = 0;
    this.updates = 0;
    this.refreshTimer = null;
  }

  async show(instrument, interval) {
    this.instrument = instrument;
    this.interval = interval;
    this.lastTime = 0;
    this.stream.setGroup("chart", [`candles:${instrument}:${interval}`], {
      onMessage: (_, frame) => this.onCandle(frame.data),
      onGap: () => this.loadCandles(),
      onError: (frame) => this.say(`stream: ${frame.message}`),
    });
    await this.loadCandles();
    this.chart.timeScale().fitContent();
    await this.refreshAnalytics();
  }

  async loadCandles() {
    const { instrument, interval } = this;
    const page = await api(`/v1/candles/${seg(instrument)}?interval=${interval}&limit=${CANDLES}`);
    if (instrument !== this.instrument || interval !== this.interval) return;
    this.candles.applyOptions({ priceFormat: priceFormat(page.data.at(-1)?.close) });
    this.candles.setData(page.data.map(bar));
    this.volume.setData(page.data.map(volumeBar));
    this.lastTime = page.data.length ? page.data[page.data.length - 1].open_time : 0;
    this.say(`${page.data.length} candles · ${page.source ?? "stored"}`);
  }

  onCandle(candle) {
    if (candle.instrument !== this.instrument || candle.interval !== this.interval) return;
    if (candle.open_time < this.lastTime) return; // the chart only appends or amends the last bar
    this.lastTime = candle.open_time;
    this.candles.update(bar(candle));
    this.volume.update(volumeBar(candle));
    this.updates += 1;
    if (candle.closed) this.scheduleRefresh();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refreshAnalytics(), 1500);
  }

  setOverlays(values) {
    this.overlays = new Set(values.filter((v) => v in OVERLAYS));
    this.showLevels = values.includes("levels");
    return this.refreshAnalytics();
  }

  async refreshAnalytics() {
    await Promise.all([this.loadIndicators(), this.loadLevels()]).catch((e) => this.say(e.message));
  }

  async loadIndicators() {
    const wanted = {};
    this.overlays.forEach((o) => Object.assign(wanted, OVERLAYS[o]));
    for (const [name, series] of this.lines) {
      if (!(name in wanted)) {
        this.chart.removeSeries(series);
        this.lines.delete(name);
      }
    }
    const names = Object.keys(wanted);
    if (!names.length || !this.instrument) return;
    const { instrument, interval } = this;
    const path = `/v1/indicators/${seg(instrument)}?interval=${interval}&names=${names.join(",")}&limit=${CANDLES}`;
    const page = await api(path);
    if (instrument !== this.instrument || interval !== this.interval) return;
    for (const name of names) {
      if (!this.lines.has(name)) {
        const series = this.chart.addSeries(LineSeries, {
          color: wanted[name], lineWidth: 2, priceLineVisible: false, lastValueVisible: false,
        });
        this.lines.set(name, series);
      }
      const points = page.data
        .filter((p) => p.values[name] !== null && p.values[name] !== undefined)
        .map((p) => ({ time: seconds(p.time), value: p.values[name] }));
      this.lines.get(name).setData(points);
    }
  }

  async loadLevels() {
    this.levelLines.forEach((line) => this.candles.removePriceLine(line));
    this.levelLines = [];
    if (!this.showLevels || !this.instrument) return;
    const { instrument, interval } = this;
    const levels = await api(`/v1/levels/${seg(instrument)}?interval=${interval}`);
    if (instrument !== this.instrument || interval !== this.interval) return;
    for (const level of levels.data) {
      this.levelLines.push(this.candles.createPriceLine({
        price: level.price,
        color: level.kind === "support" ? UP : DOWN,
        lineWidth: 1,
        lineStyle: 2,
        axisLabelVisible: true,
        title: `${level.kind} ×${level.touches}`,
      }));
    }
  }

  say(text) {
    this.status.textContent = text;
  }
}

/** Enough decimals for about six significant digits (0.0001234 as well as 91234.5). */
function priceFormat(close) {
  const magnitude = close > 0 ? Math.floor(Math.log10(close)) : 0;
  const precision = Math.min(Math.max(2, 5 - magnitude), 10);
  return { type: "price", precision, minMove: 10 ** -precision };
}

function bar(c) {
  return { time: seconds(c.open_time), open: c.open, high: c.high, low: c.low, close: c.close };
}

function volumeBar(c) {
  const color = c.close >= c.open ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)";
  return { time: seconds(c.open_time), value: c.volume, color };
}
