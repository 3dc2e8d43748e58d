// Instances: everything the gateway's presence table knows (this gateway, UIs, nodes, apps),
// live from `presence` events; Active < 1 min, Idle < 5 min, else Stale.

import { ago, badge, clear, h } from "../lib/dom.js";

function freshness(age) {
  if (age < 60000) return ["Active", "ok"];
  if (age < 300000) return ["Idle", "warn"];
  return ["Stale", "muted"];
}

export function createInstancesPanel(app) {
  const store = app.store;
  const body = h("tbody");
  const count = h("span", { class: "muted", testid: "instances-count" });
  const el = h(
    "div",
    { class: "panel" },
    h(
      "header",
      { class: "panel-head" },
      h("h1", { text: "Instances" }),
      h("p", { class: "muted" }, "Clients and devices connected to this gateway, newest first. ", count),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table", testid: "instances-table" },
        h("thead", {}, h("tr", {}, ["Host", "Mode", "Version", "Platform", "Seen", "Last event"].map((t) => h("th", { text: t })))),
        body,
      ),
    ),
  );

  function render() {
    const now = Date.now();
    const list = [...(store.presence || [])].sort((a, b) => b.ts - a.ts);
    count.textContent = `${list.length} known.`;
    if (!list.length) {
      clear(body, h("tr", {}, h("td", { colspan: "6", class: "muted", text: "Nobody yet." })));
      return;
    }
    clear(
      body,
      list.map((entry) => {
        const [word, tone] = freshness(now - entry.ts);
        const mine = entry.instanceId && entry.instanceId === app.instanceId;
        return h(
          "tr",
          { testid: "instance-row", data: { mode: entry.mode || "", reason: entry.reason || "" } },
          h(
            "td",
            { class: "strong", "data-label": "Host" },
            h("span", { dir: "auto", text: entry.host || entry.instanceId || "unknown" }),
            mine ? badge("this tab", "info") : null,
            entry.ip ? h("div", { class: "muted small mono", text: entry.ip }) : null,
          ),
          h("td", { "data-label": "Mode" }, badge(entry.mode || "—", entry.mode === "gateway" ? "accent" : "")),
          h("td", { class: "mono small", "data-label": "Version", text: entry.version || "—" }),
          h("td", { class: "small", "data-label": "Platform", text: [entry.platform, entry.deviceFamily].filter(Boolean).join(" · ") || "—" }),
          h("td", { "data-label": "Seen" }, badge(word, tone), h("span", { class: "muted small seen", text: ago(now - entry.ts) })),
          h(
            "td",
            { class: "small", "data-label": "Last event" },
            h("span", { class: "muted", text: entry.reason || "" }),
            entry.text ? h("div", { class: "event-text", dir: "auto", testid: "instance-text", text: entry.text }) : null,
          ),
        );
      }),
    );
  }

  store.on("presence", render);
  let timer = null;
  render();
  return {
    id: "instances",
    title: "Instances",
    el,
    onShow() {
      render();
      timer = setInterval(render, 5000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
