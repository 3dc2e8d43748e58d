// The app: one connection, a shell with a status line, and panels that read the store.
//
// Every hello-ok (first connect, reconnect after a restart) and every seq gap triggers the
// same refresh: health, system-presence, status and the open chat's history, so the page
// never shows state from before the gap (CONTROL-UI.md 4, 5).

import * as auth from "./lib/auth.js";
import { clear, h, icon, uuid } from "./lib/dom.js";
import { CLIENT_VERSION, GatewayClient, socketUrl } from "./lib/gateway.js";
import { Store } from "./lib/store.js";
import { createChannelsPanel } from "./panels/channels.js";
import { createChatPanel } from "./panels/chat.js";
import { createConfigPanel } from "./panels/config.js";
import { createDebugPanel } from "./panels/debug.js";
import { createInstancesPanel } from "./panels/instances.js";
import { createLogsPanel } from "./panels/logs.js";
import { createNodesPanel } from "./panels/nodes.js";
import { createOverviewPanel } from "./panels/overview.js";
import { createSessionsPanel } from "./panels/sessions.js";
import { createLogin } from "./panels/login.js";

const STATE_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  restarting: "Gateway restarting…",
  "auth-failed": "Not signed in",
  stopped: "Signed out",
};

class App {
  constructor(basePath) {
    this.basePath = basePath;
    this.url = socketUrl(basePath);
    this.store = new Store();
    this.client = null;
    this.instanceId = auth.instanceId(uuid);
    this.panels = [];
    this.current = null;
    this.refreshing = null;
  }

  request(method, params) {
    if (!this.client) return Promise.reject(new Error("not connected"));
    return this.client.request(method, params);
  }

  // -- the connection -------------------------------------------------------------------

  connect(credential) {
    if (this.client) this.client.stop();
    this.client = new GatewayClient({
      url: this.url,
      credential: credential || {},
      instanceId: this.instanceId,
      callbacks: {
        onState: (state, detail) => this.onState(state, detail),
        onHello: (hello) => this.onHello(hello),
        onEvent: (frame) => this.onEvent(frame),
        onGap: (expected, got) => this.onGap(expected, got),
      },
    });
    this.client.start();
  }

  signIn(credential) {
    auth.saveCredential(this.url, credential);
    this.login.hide();
    this.connect(credential);
  }

  forget() {
    auth.forget(this.url);
    if (this.client) this.client.stop();
    this.client = null;
    this.store.setConnection("stopped");
    this.login.show(null);
  }

  onState(state, detail) {
    this.store.setConnection(state, detail);
    if (state === "auth-failed") this.login.show(detail);
  }

  onHello(hello) {
    this.store.applyHello(hello);
    this.refresh("connect");
  }

  onGap(expected, got) {
    console.warn(`gateway: event gap (expected seq ${expected}, got ${got}); resyncing`);
    this.refresh("gap").then(() => this.notice(`Resynced after missing events ${expected}–${got - 1}`));
  }

  onEvent(frame) {
    const store = this.store;
    store.record(frame);
    const payload = frame.payload;
    const versions = frame.stateVersion || {};
    switch (frame.event) {
      case "presence":
        store.setPresence(payload && payload.presence, versions.presence ?? null);
        break;
      case "health":
        store.setHealth(payload, versions.health ?? null);
        break;
      case "heartbeat":
        store.lastHeartbeat = payload;
        store.emit("heartbeat", payload);
        break;
      case "shutdown":
        store.shutdown = { ...(payload || {}), at: Date.now() };
        store.emit("shutdown", store.shutdown);
        break;
      case "chat":
        store.emit("chat", payload);
        break;
      case "agent":
        store.emit("agent", payload);
        break;
      case "node.pair.requested":
      case "node.pair.resolved":
      case "device.pair.requested":
      case "device.pair.resolved":
        store.emit(frame.event, payload);
        break;
      default:
        break;
    }
  }

  // One refresh at a time; a second request while one runs waits for it and runs again.
  refresh(why) {
    const run = async () => {
      this.store.emit("resync", why); // readers of their own state (chat history) start now
      const [health, presence, status] = await Promise.allSettled([
        this.request("health"),
        this.request("system-presence"),
        this.request("status"),
      ]);
      if (health.status === "fulfilled") this.store.setHealth(health.value, null);
      if (presence.status === "fulfilled") this.store.setPresence(presence.value, null);
      if (status.status === "fulfilled") this.store.setStatus(status.value);
      this.store.emit("refresh", why);
    };
    const previous = this.refreshing || Promise.resolve();
    this.refreshing = previous.then(run, run);
    return this.refreshing;
  }

  notice(text) {
    const el = h("div", { class: "toast", testid: "resync-notice", role: "status", text });
    this.toasts.append(el);
    setTimeout(() => el.remove(), 6000);
  }

  // -- the page ---------------------------------------------------------------------------

  render(root) {
    const store = this.store;
    this.statusPill = h("span", { class: "pill", testid: "connection-state", text: STATE_TEXT.idle });
    this.versionText = h("span", { class: "muted small", testid: "server-version" });
    this.forgetButton = h("button", {
      class: "ghost",
      testid: "forget-button",
      title: "Remove the token from this tab and disconnect",
      text: "Forget token",
      onclick: () => this.forget(),
    });
    this.banner = h("div", { class: "banner", testid: "banner", role: "status", hidden: true });
    this.toasts = h("div", { class: "toasts" });
    const nav = h("nav", { class: "nav", "aria-label": "Panels" });
    this.main = h("main", { class: "main" });
    this.login = createLogin(this);
    const make = [
      createOverviewPanel,
      createChatPanel,
      createSessionsPanel,
      createInstancesPanel,
      createChannelsPanel,
      createNodesPanel,
      createLogsPanel,
      createConfigPanel,
      createDebugPanel,
    ];
    for (const factory of make) {
      const panel = factory(this);
      panel.count = h("span", { class: "nav-count", testid: `nav-count-${panel.id}`, hidden: true });
      panel.button = h("button", {
        class: "nav-item",
        testid: `nav-${panel.id}`,
        onclick: () => this.show(panel.id),
      }, icon(panel.id), h("span", { text: panel.title }), panel.count);
      panel.el.hidden = true;
      panel.el.dataset.testid = `panel-${panel.id}`;
      nav.append(panel.button);
      this.main.append(panel.el);
      this.panels.push(panel);
    }
    const header = h(
      "header",
      { class: "topbar" },
      h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", { text: "smart-agent-neo" })),
      h("div", { class: "topbar-right" }, this.versionText, this.statusPill, this.forgetButton),
    );
    clear(root, header, this.banner, h("div", { class: "body" }, nav, this.main, this.login.el), this.toasts);
    store.on("connection", () => this.renderStatus());
    store.on("shutdown", () => this.renderStatus());
    store.on("hello", (hello) => {
      this.versionText.textContent = `v${hello.server.version} · protocol ${hello.protocol}`;
    });
    setInterval(() => this.renderStatus(), 1000);
    window.addEventListener("hashchange", () => this.show(this.hashPanel()));
    this.show(this.hashPanel());
  }

  setNavBadge(id, text) {
    const panel = this.panels.find((p) => p.id === id);
    if (!panel) return;
    panel.count.textContent = text;
    panel.count.hidden = !text;
  }

  hashPanel() {
    const name = location.hash.replace(/^#\/?/, "");
    return this.panels.some((p) => p.id === name) ? name : "overview";
  }

  show(id) {
    for (const panel of this.panels) {
      const active = panel.id === id;
      panel.button.classList.toggle("active", active);
      panel.button.setAttribute("aria-current", active ? "page" : "false");
      if (active && panel.el.hidden) {
        panel.el.hidden = false;
        if (panel.onShow) panel.onShow();
      } else if (!active && !panel.el.hidden) {
        panel.el.hidden = true;
        if (panel.onHide) panel.onHide();
      }
    }
    this.current = id;
    if (location.hash.replace(/^#\/?/, "") !== id) history.replaceState(null, "", `#${id}`);
  }

  renderStatus() {
    const { state } = this.store.connection;
    let text = STATE_TEXT[state] || state;
    const client = this.client;
    if ((state === "reconnecting" || state === "restarting") && client && client.nextRetryAt) {
      const wait = Math.max(0, Math.ceil((client.nextRetryAt - Date.now()) / 1000));
      if (wait > 0) text += ` retry in ${wait}s`;
    }
    this.statusPill.textContent = text;
    this.statusPill.dataset.state = state;
    this.forgetButton.hidden = !auth.loadCredential(this.url);
    const shutdown = this.store.shutdown;
    let bannerText = "";
    if (state === "restarting" || (shutdown && state !== "connected")) {
      const why = shutdown && shutdown.reason && !/restart/i.test(shutdown.reason) ? ` (${shutdown.reason})` : "";
      bannerText = `Gateway restarting${why}.`;
      if (shutdown && shutdown.restartExpectedMs) {
        const left = Math.ceil((shutdown.at + shutdown.restartExpectedMs - Date.now()) / 1000);
        bannerText += left > 0 ? ` Expected back in about ${left}s.` : " Reconnecting…";
      } else {
        bannerText += " This page reconnects by itself.";
      }
    } else if (shutdown && state === "connected") {
      bannerText = `Gateway is stopping: ${shutdown.reason}`;
    } else if (state === "reconnecting") {
      bannerText = "Connection lost. Reconnecting by itself; what you see may be out of date.";
    }
    this.banner.hidden = !bannerText;
    this.banner.textContent = bannerText;
    this.banner.dataset.state = state;
  }
}

export function start(fragmentToken) {
  const meta = document.querySelector('meta[name="sa-base-path"]');
  // "/" or "/dash" (no trailing slash); the socket and the links want "/" or "/dash/"
  const path = meta && meta.content && meta.content.startsWith("/") ? meta.content : "/";
  const base = path.endsWith("/") ? path : `${path}/`;
  const app = new App(base);
  if (fragmentToken) auth.saveCredential(app.url, { token: fragmentToken });
  const root = document.getElementById("app");
  app.render(root);
  root.hidden = false;
  const boot = document.getElementById("boot");
  if (boot) boot.remove();
  const credential = auth.loadCredential(app.url);
  if (credential) app.connect(credential);
  else app.login.show(null);
  window.__controlUi = { version: CLIENT_VERSION };
}
