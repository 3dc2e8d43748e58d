// Overview: what is running, how it is reached, and whether it is healthy. Live from hello-ok
// and the health / presence / heartbeat events; the uptime ticks locally.

import { ago, badge, clear, clock, duration, h } from "../lib/dom.js";

function card(title, testid, ...body) {
  return h("section", { class: "card", testid }, h("h2", { text: title }), ...body);
}

function row(label, value, testid) {
  return h("div", { class: "kv" }, h("span", { class: "k", text: label }), h("span", { class: "v", testid, text: value }));
}

export function createOverviewPanel(app) {
  const store = app.store;
  const gateway = h("div");
  const health = h("div");
  const agents = h("div");
  const instances = h("div");
  const config = h("div");
  const el = h(
    "div",
    { class: "panel" },
    h("header", { class: "panel-head" }, h("h1", { text: "Overview" }), h("p", { class: "muted", text: "Your gateway at a glance." })),
    h(
      "div",
      { class: "grid" },
      card("Gateway", "card-gateway", gateway),
      card("Health", "card-health", health),
      card("Agents", "card-agents", agents),
      card("Instances", "card-instances", instances),
      card("Config", "card-config", config),
    ),
  );

  function renderGateway() {
    const hello = store.hello;
    const state = store.connection.state;
    if (!hello) {
      clear(gateway, h("p", { class: "muted", text: "Not connected yet." }));
      return;
    }
    const snap = hello.snapshot || {};
    const status = store.status && store.status.gateway;
    clear(
      gateway,
      row("Version", hello.server.version, "overview-version"),
      row("Protocol", String(hello.protocol), "overview-protocol"),
      row("Uptime", store.uptimeMs === null ? "—" : duration(store.uptimeMs), "overview-uptime"),
      row("Auth mode", snap.authMode || "—", "overview-auth"),
      row("Connection", state === "connected" ? `connected · ${hello.server.connId.slice(0, 8)}` : state, "overview-connection"),
      status ? row("Listening", status.url, "overview-url") : null,
      status ? row("Clients", String(status.connections), "overview-clients") : null,
    );
  }

  function renderHealth() {
    const value = store.health;
    if (!value) {
      clear(health, h("p", { class: "muted", text: "No health snapshot yet." }));
      return;
    }
    const channels = value.channelOrder || [];
    const beat = store.lastHeartbeat;
    clear(
      health,
      h("div", { class: "kv" }, h("span", { class: "k", text: "Status" }), badge(value.ok ? "healthy" : "degraded", value.ok ? "ok" : "warn", "overview-health")),
      row("Checked", `${clock(value.ts)} (${value.durationMs} ms)`, "overview-health-ts"),
      row("Channels", channels.length ? channels.map((id) => (value.channelLabels || {})[id] || id).join(", ") : "none configured", "overview-channels"),
      row("Sessions", String(value.sessions ? value.sessions.count : 0), "overview-sessions"),
      row("Heartbeat", value.heartbeatSeconds ? `every ${duration(value.heartbeatSeconds * 1000)}` : "off", "overview-heartbeat"),
      row("Last heartbeat", beat ? `${beat.status} · ${ago(Date.now() - beat.ts)}` : "none yet", "overview-last-heartbeat"),
    );
  }

  function renderAgents() {
    const list = (store.health && store.health.agents) || [];
    if (!list.length) {
      clear(agents, h("p", { class: "muted", text: "No agents reported." }));
      return;
    }
    clear(
      agents,
      h(
        "ul",
        { class: "plain" },
        list.map((agent) =>
          h(
            "li",
            { class: "agent-row" },
            h("span", { class: "strong", text: agent.name || agent.agentId }),
            agent.isDefault ? badge("default", "info") : null,
            h("span", { class: "muted small", text: ` ${agent.sessions.count} session${agent.sessions.count === 1 ? "" : "s"} · heartbeat ${agent.heartbeat.enabled ? agent.heartbeat.every : "off"}` }),
          ),
        ),
      ),
    );
  }

  function renderInstances() {
    const now = Date.now();
    const list = store.presence || [];
    const active = list.filter((p) => now - p.ts < 60000).length;
    clear(
      instances,
      row("Known", String(list.length), "overview-instances"),
      row("Active now", String(active), "overview-instances-active"),
      h("button", { class: "link", text: "Open the Instances panel →", onclick: () => app.show("instances") }),
    );
  }

  function renderConfig() {
    const status = store.status && store.status.config;
    if (!status) {
      clear(config, h("p", { class: "muted", text: "Waiting for status…" }));
      return;
    }
    clear(
      config,
      h("div", { class: "kv" }, h("span", { class: "k", text: "Validation" }), badge(status.valid ? "valid" : "invalid", status.valid ? "ok" : "bad", "overview-config-valid")),
      status.problem ? h("p", { class: "error-text", text: status.problem }) : null,
      row("File", status.exists ? status.path : `${status.path} (not found: defaults)`, "overview-config-path"),
      row("Reload mode", status.reloadMode),
    );
  }

  const renderAll = () => {
    renderGateway();
    renderHealth();
    renderAgents();
    renderInstances();
    renderConfig();
  };
  store.on("hello", renderAll);
  store.on("connection", renderGateway);
  store.on("health", () => {
    renderHealth();
    renderAgents();
  });
  store.on("heartbeat", renderHealth);
  store.on("presence", renderInstances);
  store.on("status", () => {
    renderGateway();
    renderConfig();
  });
  let timer = null;
  renderAll();
  return {
    id: "overview",
    title: "Overview",
    el,
    onShow() {
      renderAll();
      timer = setInterval(() => {
        renderGateway();
        renderInstances();
      }, 1000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
