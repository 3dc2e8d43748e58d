// Nodes & devices: pairing requests waiting for a decision (Approve / Reject), the nodes the
// gateway knows (node.list) and the paired devices (device.pair.list). Live from the
// node.pair.* / device.pair.* events and presence; read again on reconnect.

import { ago, badge, clear, h } from "../lib/dom.js";

export function createNodesPanel(app) {
  const store = app.store;
  const pendingBox = h("div", { testid: "pending-list" });
  const nodesBody = h("tbody");
  const devicesBody = h("tbody");
  const note = h("p", { class: "muted", testid: "nodes-note" });
  const el = h(
    "div",
    { class: "panel" },
    h(
      "header",
      { class: "panel-head row" },
      h("div", {}, h("h1", { text: "Nodes & devices" }), note),
      h("button", { class: "ghost", text: "Refresh", testid: "nodes-refresh", onclick: () => load() }),
    ),
    h("section", { class: "card stack" }, h("h2", { text: "Waiting for approval" }), pendingBox),
    h(
      "section",
      { class: "card stack" },
      h("h2", { text: "Nodes" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table", testid: "nodes-table" },
          h("thead", {}, h("tr", {}, ["Node", "State", "Platform", "Capabilities", "Last seen"].map((t) => h("th", { text: t })))),
          nodesBody,
        ),
      ),
    ),
    h(
      "section",
      { class: "card stack" },
      h("h2", { text: "Paired devices" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table", testid: "devices-table" },
          h("thead", {}, h("tr", {}, ["Device", "Client", "Roles", "Approved"].map((t) => h("th", { text: t })))),
          devicesBody,
        ),
      ),
    ),
  );
  let pendingCount = 0;
  let timer = null;

  function setBadge(count) {
    pendingCount = count;
    if (!app.setNavBadge) return;
    app.setNavBadge("nodes", count ? String(count) : "");
  }

  async function decide(kind, requestId, approve) {
    const method = `${kind}.pair.${approve ? "approve" : "reject"}`;
    try {
      await app.request(method, { requestId });
      note.textContent = `${approve ? "Approved" : "Rejected"}.`;
    } catch (err) {
      note.textContent = `${method} failed: ${err.message}`;
    }
    load();
  }

  function pendingRow(kind, request) {
    const name = request.displayName || request.nodeId || request.deviceId;
    const what = kind === "node" ? "node" : `device · ${request.role || "operator"}`;
    const extra = kind === "device" && request.scopes && request.scopes.length ? ` · ${request.scopes.join(", ")}` : "";
    return h(
      "div",
      { class: "pending", testid: "pending-request", data: { kind, requestId: request.requestId } },
      h(
        "div",
        { class: "pending-main" },
        h("span", { class: "strong", dir: "auto", text: name }),
        badge(what, "info"),
        request.isRepair ? badge("repair", "warn") : null,
        h("div", { class: "muted small", text: `${[request.platform, request.remoteIp].filter(Boolean).join(" · ") || "—"}${extra} · asked ${ago(Date.now() - request.ts)}` }),
      ),
      h(
        "div",
        { class: "pending-actions" },
        h("button", { class: "primary small", text: "Approve", testid: "approve", onclick: () => decide(kind, request.requestId, true) }),
        h("button", { class: "ghost small", text: "Reject", testid: "reject", onclick: () => decide(kind, request.requestId, false) }),
      ),
    );
  }

  async function call(method) {
    try {
      return await app.request(method, {});
    } catch (err) {
      return { error: err };
    }
  }

  async function load() {
    if (!app.client || !app.client.connected) return;
    const [nodes, nodePairs, devicePairs] = await Promise.all([call("node.list"), call("node.pair.list"), call("device.pair.list")]);
    const pending = [
      ...((nodePairs.pending || []).map((r) => ["node", r])),
      ...((devicePairs.pending || []).map((r) => ["device", r])),
    ].sort((a, b) => b[1].ts - a[1].ts);
    setBadge(pending.length);
    clear(pendingBox, pending.length ? pending.map(([kind, r]) => pendingRow(kind, r)) : h("p", { class: "muted", testid: "pending-empty", text: "Nothing is waiting. New nodes and remote devices appear here until you approve or reject them." }));
    const now = Date.now();
    const list = nodes.nodes || [];
    clear(
      nodesBody,
      list.length
        ? list.map((node) =>
            h(
              "tr",
              { testid: "node-row", data: { nodeId: node.nodeId } },
              h("td", { "data-label": "Node" }, h("span", { class: "strong", dir: "auto", text: node.displayName || node.nodeId }), h("div", { class: "muted small mono", text: node.nodeId })),
              h("td", { "data-label": "State" }, badge(node.connected ? "connected" : "offline", node.connected ? "ok" : ""), node.paired ? badge("paired", "info") : badge("not paired", "warn")),
              h("td", { class: "small", "data-label": "Platform", text: [node.platform, node.deviceFamily, node.version].filter(Boolean).join(" · ") || "—" }),
              h("td", { class: "small", "data-label": "Capabilities", text: `${(node.caps || []).join(", ") || "—"}${node.commands && node.commands.length ? ` · ${node.commands.length} command${node.commands.length === 1 ? "" : "s"}` : ""}` }),
              h("td", { class: "small", "data-label": "Last seen", text: node.lastSeenAtMs ? ago(now - node.lastSeenAtMs) : node.connected ? "now" : "—" }),
            ),
          )
        : h("tr", {}, h("td", { colspan: "5", class: "muted", "data-label": "", text: nodes.error ? `Could not list nodes: ${nodes.error.message}` : "No nodes yet." })),
    );
    const devices = devicePairs.paired || [];
    clear(
      devicesBody,
      devices.length
        ? devices.map((device) =>
            h(
              "tr",
              { testid: "device-row" },
              h("td", { "data-label": "Device" }, h("span", { class: "strong", dir: "auto", text: device.displayName || device.deviceId.slice(0, 16) }), h("div", { class: "muted small mono", text: device.deviceId.slice(0, 24) })),
              h("td", { class: "small", "data-label": "Client", text: [device.clientId, device.clientMode, device.platform].filter(Boolean).join(" · ") || "—" }),
              h("td", { class: "small", "data-label": "Roles", text: (device.roles || []).join(", ") }),
              h("td", { class: "small", "data-label": "Approved", text: ago(now - device.approvedAtMs) }),
            ),
          )
        : h("tr", {}, h("td", { colspan: "4", class: "muted", "data-label": "", text: devicePairs.error ? `Could not list devices: ${devicePairs.error.message}` : "No paired devices." })),
    );
    note.textContent = pendingCount ? `${pendingCount} request${pendingCount === 1 ? "" : "s"} waiting for you.` : "Phones, desktops and node hosts connected to this gateway.";
  }

  let pending = null;
  function soon() {
    clearTimeout(pending);
    pending = setTimeout(load, 150);
  }
  for (const name of ["node.pair.requested", "node.pair.resolved", "device.pair.requested", "device.pair.resolved"]) {
    store.on(name, soon);
  }
  store.on("presence", () => {
    if (!el.hidden) soon();
  });
  store.on("refresh", load);
  return {
    id: "nodes",
    title: "Nodes",
    el,
    onShow() {
      load();
      timer = setInterval(load, 30000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
