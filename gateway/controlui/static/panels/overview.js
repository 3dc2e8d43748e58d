// Overview: what is running, how it is reached, and whether it is healthy. Live from hello-ok
// and the health / presence / heartbeat events; the uptime ticks locally.

import { ago, badge, clear, clock, duration, h } from "../lib/dom.js";

function card(title, testid, ...body) {
  return h("section", { class: "card", testid }, h("h2", { text: title }), ...body);
}

function row(label, value, testid) {
  return h("div", { class: "kv" }, h("span", { class: "k", text: label }), h("span", { class: "v", testid, text: value }));
}

function tile(label, testid) {
  const value = h("div", { class: "tile-value", testid });
  const sub = h("div", { class: "tile-sub" });
  const el = h("section", { class: "tile" }, h("div", { class: "tile-label", text: label }), value, sub);
  return { el, value, sub };
}

export function createOverviewPanel(app) {
  const store = app.store;
  let sessions = null; // sessions.list: fresher than the health snapshot's counts
  let sessionsTimer = null;
  const tiles = {
    health: tile("Health", "tile-health"),
    uptime: tile("Uptime", "tile-uptime"),
    instances: tile("Instances", "tile-instances"),
    sessions: tile("Sessions", "tile-sessions"),
  };
  const gateway = h("div");
  const health = h("div");
  const agents = h("div");
  const instances = h("div");
  const config = h("div");
  const el = h(
    "div",
    { class: "panel" },
    h("header", { class: "panel-head" }, h("h1", { text: "Overview" }), h("p", { class: "muted", text: "Your gateway at a glance." })),
    h("div", { class: "tiles" }, Object.values(tiles).map((t) => t.el)),
    h(
      "div",
      { class: "grid" },
      card("Gateway", "card-gateway", gateway),
      card("Health", "card-health", health),
      card("Agents", "card-agents", agents),
      card("Recent sessions", "card-recent", instances),
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
      row("Connection", state === "connected" ? "connected (this tab)" : state, "overview-connection"),
      status ? row("Listening", status.url, "overview-url") : null,
      status ? row("Clients", String(status.connections), "overview-clients") : null,
    );
  }

  function renderTiles() {
    const value = store.health;
    const state = store.connection.state;
    tiles.health.value.textContent = value ? (value.ok ? "Healthy" : "Degraded") : "—";
    tiles.health.value.dataset.tone = value ? (value.ok ? "ok" : "warn") : "";
    tiles.health.sub.textContent = state === "connected" ? "connected" : state;
    tiles.uptime.value.textContent = store.uptimeMs === null ? "—" : duration(store.uptimeMs);
    const started = Date.now() - (store.uptimeMs || 0);
    const long = (store.uptimeMs || 0) > 20 * 3600 * 1000;
    tiles.uptime.sub.textContent = store.hello ? `since ${long ? new Date(started).toLocaleString() : clock(started)}` : "";
    const now = Date.now();
    const list = store.presence || [];
    tiles.instances.value.textContent = String(list.filter((p) => now - p.ts < 60000).length);
    tiles.instances.sub.textContent = `active of ${list.length} known`;
    const count = sessions ? sessions.count : value && value.sessions ? value.sessions.count : null;
    tiles.sessions.value.textContent = count === null ? "—" : String(count);
    tiles.sessions.sub.textContent = value ? `${(value.agents || []).length} agent${(value.agents || []).length === 1 ? "" : "s"}` : "";
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
      h("div", { class: "kv" }, h("span", { class: "k", text: "Checked" }), h("span", { class: "v", testid: "overview-health-ts", data: { ts: String(value.ts) }, text: `${clock(value.ts)} (${value.durationMs} ms)` })),
      row("Channels", channels.length ? channels.map((id) => (value.channelLabels || {})[id] || id).join(", ") : "none configured", "overview-channels"),
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
            h("div", { class: "muted small", text: `heartbeat ${agent.heartbeat.enabled ? `every ${agent.heartbeat.every}` : "off"} · ${agent.agentId}` }),
          ),
        ),
      ),
    );
  }

  function renderInstances() {
    const now = Date.now();
    const recent = sessions ? sessions.sessions : (store.health && store.health.sessions && store.health.sessions.recent) || [];
    if (!recent.length) {
      clear(instances, h("p", { class: "muted", text: "No conversations yet." }), h("button", { class: "link", text: "Start one in Chat →", onclick: () => app.show("chat") }));
      return;
    }
    clear(
      instances,
      recent.slice(0, 5).map((item) =>
        h(
          "div",
          { class: "kv" },
          h("button", {
            class: "link mono small",
            text: item.key,
            onclick: () => {
              app.panels.find((p) => p.id === "chat").open(item.key);
              app.show("chat");
            },
          }),
          h("span", { class: "v muted small", text: item.updatedAt ? ago(now - item.updatedAt) : "" }),
        ),
      ),
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
      h("div", { class: "kv" }, h("span", { class: "k", text: "File" }), h("span", { class: "v path", testid: "overview-config-path", text: status.exists ? status.path : `${status.path} (not found: defaults)` })),
      row("Reload mode", status.reloadMode),
    );
  }

  const renderAll = () => {
    renderTiles();
    renderGateway();
    renderHealth();
    renderAgents();
    renderInstances();
    renderConfig();
  };
  store.on("hello", renderAll);
  store.on("connection", () => {
    renderGateway();
    renderTiles();
  });
  store.on("health", () => {
    renderHealth();
    renderAgents();
    renderTiles();
    renderInstances();
  });
  store.on("heartbeat", renderHealth);
  store.on("presence", () => {
    renderInstances();
    renderTiles();
  });
  store.on("status", () => {
    renderGateway();
    renderConfig();
  });
  async function loadSessions() {
    if (!app.client || !app.client.connected) return;
    try {
      sessions = await app.request("sessions.list", { limit: 5 });
    } catch (err) {
      return; // the health snapshot's numbers stay
    }
    renderTiles();
    renderInstances();
  }
  store.on("refresh", loadSessions);
  store.on("chat", (event) => {
    if (event && event.state !== "delta") {
      clearTimeout(sessionsTimer);
      sessionsTimer = setTimeout(loadSessions, 300);
    }
  });

  let timer = null;
  renderAll();
  return {
    id: "overview",
    title: "Overview",
    el,
    onShow() {
      renderAll();
      loadSessions();
      timer = setInterval(() => {
        renderGateway();
        renderInstances();
        renderTiles();
      }, 1000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
