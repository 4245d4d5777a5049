// Alerts panel: the caller's rules (/v1/alerts), a form for price-cross rules on the
// charted instrument, and fired events live from the caller's own `alerts` channel.

import { api, seg } from "./api.js";
import { clock, el, price } from "./format.js";

const MAX_EVENTS = 50;

export class AlertsPanel {
  constructor({ stream, instrument }) {
    this.stream = stream;
    this.instrument = instrument; // () -> the charted instrument
    this.note = document.getElementById("alerts-note");
    this.rules = document.getElementById("alert-rules");
    this.events = document.getElementById("alert-events");
    this.form = document.getElementById("alert-form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create().catch((error) => this.say(error.message));
    });
  }

  async load() {
    try {
      await this.loadRules();
    } catch (error) {
      this.say(error.status === 404 ? "alerts are not available on this server" : error.message);
      this.form.hidden = true;
      return;
    }
    this.stream.setGroup("alerts", ["alerts"], {
      onMessage: (_, frame) => this.fired(frame),
      onError: (frame) => this.say(`stream: ${frame.message}`),
    });
  }

  async loadRules() {
    const list = await api("/v1/alerts?limit=100");
    this.rules.replaceChildren(...list.data.map((rule) => this.ruleItem(rule)));
  }

  ruleItem(rule) {
    const p = rule.params ?? {};
    const what = p.level !== undefined
      ? `${p.instrument} ${p.direction ?? "either"} ${price(p.level)}`
      : JSON.stringify(p);
    const remove = el("button", { text: "×", attrs: { type: "button", title: "delete" } });
    remove.addEventListener("click", () => {
      api(`/v1/alerts/${seg(rule.id)}`, { method: "DELETE" })
        .then(() => this.loadRules())
        .catch((error) => this.say(error.message));
    });
    return el("li", { attrs: { "data-rule": rule.id } }, [
      el("span", { text: `${rule.kind}: ${what}` }),
      el("span", { cls: "muted small", text: rule.status }),
      remove,
    ]);
  }

  async create() {
    const instrument = this.instrument();
    const level = Number(document.getElementById("alert-level").value);
    const direction = document.getElementById("alert-direction").value;
    await api("/v1/alerts", {
      method: "POST",
      body: {
        name: `${instrument} ${direction} ${level}`,
        kind: "price_cross",
        params: { instrument, level, direction },
        one_shot: true,
      },
    });
    this.say("rule added");
    await this.loadRules();
  }

  fired(frame) {
    const event = frame.data ?? {};
    // A snapshot repeats the newest event; after a reconnect it may be one we already show.
    if (event.id && this.events.querySelector(`[data-event="${CSS.escape(event.id)}"]`)) return;
    // {id, type: "alert.fired", time, data: {rule_id, name, kind, instrument, price, ...}}
    const body = event.data ?? {};
    const subject = body.instrument ?? body.symbol ?? body.sector ?? body.chain ?? "";
    const value = body.price ?? body.value;
    const text = `${clock(event.time ?? frame.time)} ${body.kind ?? event.type} ${subject}`
      + (value !== undefined ? ` @ ${price(value)}` : "")
      + (body.name ? ` (${body.name})` : "");
    this.events.prepend(el("li", { text, attrs: { "data-event": event.id ?? "" } }));
    while (this.events.children.length > MAX_EVENTS) this.events.lastChild.remove();
    this.loadRules().catch(() => {}); // a one-shot rule is no longer active
  }

  say(text) {
    this.note.textContent = text;
  }
}
