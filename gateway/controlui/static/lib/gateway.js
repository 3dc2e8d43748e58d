// The WebSocket client of the gateway protocol (PROTOCOL.md; CONTROL-UI.md 2, 5).
//
// One socket at a time, always to this page's own origin. Requests are matched to responses
// by id; events carry a per-connection seq, and a gap (or any new socket) asks the app to
// re-read its state. Any inbound frame counts as life: after 2 x tickIntervalMs of silence
// the socket is closed (4000 "tick timeout") and replaced. Reconnects back off with jitter
// (0.8-0.96 s first, growing to a 12.5-15 s cap; a server's retryAfterMs is a minimum) and
// stop for good on auth errors that only a new credential can fix. Nothing is ever sent on
// a reconnect but the handshake: requests are not replayed.

export const PROTOCOL = 4;
export const CLIENT_ID = "smart-agent-neo-control-ui";
export const CLIENT_VERSION = "0.1.0";
const SCOPES = [
  "operator.admin",
  "operator.read",
  "operator.write",
  "operator.approvals",
  "operator.pairing",
];
const TERMINAL = new Set([
  "AUTH_TOKEN_MISSING",
  "AUTH_TOKEN_MISMATCH",
  "AUTH_TOKEN_NOT_CONFIGURED",
  "AUTH_PASSWORD_MISSING",
  "AUTH_PASSWORD_MISMATCH",
  "AUTH_PASSWORD_NOT_CONFIGURED",
  "PAIRING_REQUIRED",
  "CONTROL_UI_ORIGIN_NOT_ALLOWED",
  "PROTOCOL_MISMATCH",
]);
const CHALLENGE_TIMEOUT_MS = 15000;
const REQUEST_TIMEOUT_MS = 30000;

export class RpcError extends Error {
  constructor(method, error) {
    super((error && error.message) || "request failed");
    this.method = method;
    this.code = (error && error.code) || "UNAVAILABLE";
    this.details = error && error.details;
    this.retryAfterMs = error && error.retryAfterMs;
  }
  get detailCode() {
    return this.details && typeof this.details === "object" ? this.details.code : undefined;
  }
}

function randomId() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
}

export function socketUrl(basePath) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${basePath}`;
}

function isFrame(value) {
  return value !== null && typeof value === "object" && typeof value.type === "string";
}

// callbacks: onState(state, detail), onHello(hello), onEvent(frame), onGap(expected, got)
export class GatewayClient {
  constructor({ url, credential, instanceId, callbacks }) {
    this.url = url;
    this.credential = credential; // {token} | {password} | {}
    this.instanceId = instanceId;
    this.cb = callbacks;
    this.ws = null;
    this.pending = new Map();
    this.lastSeq = 0;
    this.state = "idle";
    this.attempt = 0;
    this.stopped = false;
    this.terminal = null;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastActivity = 0;
    this.tickMs = 30000;
    this.restartingSince = 0;
  }

  start() {
    this.stopped = false;
    this.terminal = null;
    this._open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._teardown(1000, "client stop");
    this._setState("stopped");
  }

  get connected() {
    return this.state === "connected";
  }

  request(method, params = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    if (!this.ws || this.state !== "connected") {
      return Promise.reject(new RpcError(method, { code: "UNAVAILABLE", message: "not connected" }));
    }
    return this._send(this.ws, method, params, timeoutMs);
  }

  _send(ws, method, params, timeoutMs) {
    const id = randomId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(method, { code: "UNAVAILABLE", message: `${method} timed out` }));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer, ws });
      ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  _setState(state, detail) {
    this.state = state;
    this.cb.onState(state, detail);
  }

  _open() {
    if (this.stopped) return;
    this._setState(this.attempt === 0 ? "connecting" : this.state === "restarting" ? "restarting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.warn("gateway: cannot open a WebSocket", err);
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.lastSeq = 0; // seq is per socket
    const challengeTimer = setTimeout(() => ws.close(1008, "connect challenge timeout"), CHALLENGE_TIMEOUT_MS);
    ws.onmessage = (message) => {
      if (ws !== this.ws) return; // a superseded socket
      this.lastActivity = Date.now();
      let frame;
      try {
        frame = JSON.parse(typeof message.data === "string" ? message.data : "");
      } catch (err) {
        console.warn("gateway: ignoring a frame that is not JSON", String(message.data).slice(0, 200));
        return;
      }
      if (!isFrame(frame)) {
        console.warn("gateway: ignoring a malformed frame", frame);
        return;
      }
      if (frame.type === "event" && frame.event === "connect.challenge") {
        clearTimeout(challengeTimer);
        this._handshake(ws, frame.payload);
        return;
      }
      this._dispatch(ws, frame);
    };
    ws.onclose = (event) => {
      clearTimeout(challengeTimer);
      if (ws !== this.ws) return;
      this._closed(event.code, event.reason);
    };
    ws.onerror = () => {
      // the close event follows; an origin refusal (403) looks like this too
    };
  }

  async _handshake(ws, challenge) {
    if (!challenge || typeof challenge.nonce !== "string" || !challenge.nonce) {
      ws.close(1008, "connect challenge missing nonce");
      return;
    }
    const params = {
      minProtocol: PROTOCOL,
      maxProtocol: PROTOCOL,
      client: {
        id: CLIENT_ID,
        displayName: "Control UI",
        version: CLIENT_VERSION,
        platform: (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "web",
        mode: "webchat",
        instanceId: this.instanceId,
      },
      role: "operator",
      scopes: SCOPES,
      caps: [],
      userAgent: navigator.userAgent,
      locale: navigator.language,
    };
    if (this.credential.token) params.auth = { token: this.credential.token };
    else if (this.credential.password) params.auth = { password: this.credential.password };
    try {
      const hello = await this._send(ws, "connect", params, CHALLENGE_TIMEOUT_MS);
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.restartingSince = 0;
      this.tickMs = (hello.policy && hello.policy.tickIntervalMs) || 30000;
      this._startWatchdog(ws);
      this._setState("connected");
      this.cb.onHello(hello);
    } catch (err) {
      if (ws !== this.ws) return;
      const code = err.detailCode || err.code;
      if (TERMINAL.has(code)) {
        this.terminal = err;
      } else if (code === "AUTH_RATE_LIMITED" || err.retryAfterMs) {
        this.retryAfterMs = err.retryAfterMs || 0;
      }
      this.lastError = err;
      // the server closes the socket next; _closed decides what happens then
    }
  }

  _dispatch(ws, frame) {
    if (frame.type === "res") {
      const waiter = this.pending.get(frame.id);
      if (!waiter || waiter.ws !== ws) return;
      this.pending.delete(frame.id);
      clearTimeout(waiter.timer);
      if (frame.ok === true) waiter.resolve(frame.payload);
      else waiter.reject(new RpcError(waiter.method, frame.error));
      return;
    }
    if (frame.type !== "event" || typeof frame.event !== "string") {
      console.warn("gateway: ignoring an unexpected frame", frame);
      return;
    }
    if (Number.isInteger(frame.seq)) {
      const expected = this.lastSeq + 1;
      if (this.lastSeq > 0 && frame.seq > expected) this.cb.onGap(expected, frame.seq);
      if (frame.seq > this.lastSeq) this.lastSeq = frame.seq;
    }
    this.cb.onEvent(frame);
  }

  _startWatchdog(ws) {
    clearInterval(this.watchdog);
    this.lastActivity = Date.now();
    const every = Math.max(this.tickMs, 1000);
    this.watchdog = setInterval(() => {
      if (ws !== this.ws) return;
      if (Date.now() - this.lastActivity > 2 * this.tickMs) {
        console.warn(`gateway: no frame for ${2 * this.tickMs} ms; reconnecting`);
        this._teardown(4000, "tick timeout");
        this._closed(4000, "tick timeout");
      }
    }, Math.min(every, 1000));
  }

  _teardown(code, reason) {
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(code, reason);
      } catch (err) {
        ws.close();
      }
    }
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new RpcError(waiter.method, { code: "UNAVAILABLE", message: "connection closed" }));
      this.pending.delete(id);
    }
  }

  _closed(code, reason) {
    this._teardown(code, reason);
    if (this.stopped) return;
    if (this.terminal) {
      this._setState("auth-failed", this.terminal);
      return;
    }
    // 1012/1013: the gateway is restarting or starting; until it is back (or 30 s have
    // passed), a refused retry is part of the same restart, not a lost connection
    if (code === 1012 || code === 1013) this.restartingSince = Date.now();
    const restarting = this.restartingSince && Date.now() - this.restartingSince < 30000;
    this._setState(restarting ? "restarting" : "reconnecting", { code, reason });
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const base = Math.min(800 * Math.pow(1.7, this.attempt), 12500);
    const jittered = base * (1 + Math.random() * 0.2);
    const delay = Math.max(jittered, this.retryAfterMs || 0);
    this.retryAfterMs = 0;
    this.attempt += 1;
    this.nextRetryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this._open(), delay);
  }
}
