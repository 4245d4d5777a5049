// Sector heatmap: one tile per sector, coloured by the chosen horizon's equal-weighted
// return (green up, red down, saturating at ±SCALE), live from the `sectors` channel.

import { api } from "./api.js";
import { el, percent } from "./format.js";

const SCALE = { "1h": 0.01, "24h": 0.05, "7d": 0.15, "30d": 0.3 };

export class SectorHeatmap {
  constructor({ stream }) {
    this.stream = stream;
    this.box = document.getElementById("heatmap");
    this.horizon = document.getElementById("sector-horizon");
    this.sectors = [];
    this.horizon.addEventListener("change", () => this.paint());
  }

  async load() {
    try {
      this.sectors = (await api("/v1/sectors")).data;
    } catch (error) {
      this.box.replaceChildren(el("p", { cls: "muted", text: `sectors: ${error.message}` }));
      return;
    }
    this.paint();
    this.stream.setGroup("sectors", ["sectors"], {
      onMessage: (_, frame) => {
        if (frame.data?.event !== "sectors") return; // breakdown events precede the table
        this.sectors = frame.data.data;
        this.paint();
      },
      onGap: () => this.load(),
    });
  }

  paint() {
    const horizon = this.horizon.value;
    const tiles = [...this.sectors]
      .sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9))
      .map((sector) => this.tile(sector, horizon));
    if (!tiles.length) tiles.push(el("p", { cls: "muted", text: "no sector has data yet" }));
    this.box.replaceChildren(...tiles);
  }

  tile(sector, horizon) {
    const value = sector.performance?.[horizon]?.equal ?? null;
    const tile = el("div", { cls: "tile", attrs: { "data-sector": sector.id } }, [
      el("strong", { text: sector.name }),
      el("span", { cls: "perf", text: percent(value) }),
      el("span", { cls: "small", text: `${sector.members.length} members · breadth ${breadth(sector)}` }),
    ]);
    tile.title = `${sector.description}\n${sector.members.join(", ")}`;
    tile.style.backgroundColor = heat(value, SCALE[horizon]);
    return tile;
  }
}

function breadth(sector) {
  return sector.breadth === null ? "–" : `${Math.round(sector.breadth * 100)}%`;
}

/** Grey at 0 and for no data, towards green or red with |value| / scale. */
export function heat(value, scale) {
  if (value === null || value === undefined) return "rgb(48,54,61)";
  const t = Math.min(Math.abs(value) / scale, 1);
  const [r, g, b] = value >= 0 ? [38, 166, 154] : [239, 83, 80];
  const mix = (c, base) => Math.round(base + (c - base) * t);
  return `rgb(${mix(r, 48)},${mix(g, 54)},${mix(b, 61)})`;
}
