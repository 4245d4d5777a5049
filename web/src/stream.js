// The /v1/stream protocol (docs/stream.md) for a browser: the key goes in the `auth` op
// (browsers cannot set handshake headers), every group of channels is its own subscribe
// op (the server refuses a subscribe as a whole, so one unknown channel must not take the
// others down), and a reconnect resumes each channel from the last seq seen.

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10000;

export class Stream {
  /**
   * @param {object} options
   * @param {() => string | null} options.token - the credential for the `auth` op
   * @param {(state: string, detail?: string) => void} options.onState - connection state
   * @param {() => void} options.onAuthFailed - 1008: the key is bad, revoked or expired
   */
  constructor({ token, onState, onAuthFailed }) {
    this.token = token;
    this.onState = onState;
    this.onAuthFailed = onAuthFailed;
    this.groups = new Map(); // name -> {channels, onMessage, onGap, onError, opId}
    this.lastSeq = new Map(); // channel -> last seq seen
    this.channelGroup = new Map(); // channel -> group name
    this.nextId = 1;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.backoff = MIN_BACKOFF_MS;
    this.reconnects = 0;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/stream`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "bye");
  }

  /** Replace the channels of a group; handlers get (channel, frame). */
  setGroup(name, channels, { onMessage, onGap = () => {}, onError = () => {} }) {
    const old = this.groups.get(name);
    const group = { channels: [...new Set(channels)], onMessage, onGap, onError, opId: null };
    this.groups.set(name, group);
    if (old) {
      const gone = old.channels.filter((c) => !group.channels.includes(c));
      gone.forEach((c) => {
        this.channelGroup.delete(c);
        this.lastSeq.delete(c);
      });
      if (gone.length && this.ready) this.send({ op: "unsubscribe", id: this.id(), channels: gone });
    }
    group.channels.forEach((c) => this.channelGroup.set(c, name));
    if (this.ready) this.subscribe(group);
  }

  id() {
    return this.nextId++;
  }

  send(op) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(op));
  }

  subscribe(group) {
    if (!group.channels.length) return;
    const resume = {};
    for (const c of group.channels) {
      if (this.lastSeq.has(c)) resume[c] = this.lastSeq.get(c);
    }
    group.opId = this.id();
    this.send({ op: "subscribe", id: group.opId, channels: group.channels, resume });
  }

  connect() {
    this.onState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => this.send({ op: "auth", token: this.token() || "" });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(ws, event);
  }

  receive(frame) {
    switch (frame.type) {
      case "authenticated":
        this.ready = true;
        this.backoff = MIN_BACKOFF_MS;
        this.onState("live");
        this.groups.forEach((g) => this.subscribe(g));
        break;
      case "snapshot":
      case "data":
        this.deliver(frame);
        break;
      case "gap":
        this.gap(frame);
        break;
      case "error":
        this.error(frame);
        break;
      default: // subscribed, unsubscribed, heartbeat, pong
    }
  }

  deliver(frame) {
    const last = this.lastSeq.get(frame.channel);
    // A snapshot may follow a gap with a lower seq (history restarted); live data never
    // repeats a seq we have already shown.
    if (frame.type === "data" && last !== undefined && frame.seq <= last) return;
    this.lastSeq.set(frame.channel, frame.seq);
    const group = this.groups.get(this.channelGroup.get(frame.channel));
    if (group) group.onMessage(frame.channel, frame);
  }

  gap(frame) {
    const last = this.lastSeq.get(frame.channel);
    if (last !== undefined && frame.to_seq < last) this.lastSeq.delete(frame.channel);
    const group = this.groups.get(this.channelGroup.get(frame.channel));
    if (group) group.onGap(frame.channel, frame);
  }

  error(frame) {
    if (frame.code === "invalid_token" || frame.code === "token_expired") {
      this.onAuthFailed();
      return;
    }
    for (const group of this.groups.values()) {
      if (group.opId !== null && group.opId === frame.id) group.onError(frame);
    }
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ready = false;
    this.ws = null;
    if (event.code === 1008) {
      this.onState("offline", "authentication refused");
      this.onAuthFailed();
      return;
    }
    if (this.stopped) {
      this.onState("offline");
      return;
    }
    const wait = this.backoff * (0.5 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.reconnects += 1;
    this.onState("reconnecting", `code ${event.code}`);
    setTimeout(() => {
      if (!this.stopped) this.connect();
    }, wait);
  }
}
