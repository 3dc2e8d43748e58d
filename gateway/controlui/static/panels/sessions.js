// Sessions: every transcript the gateway keeps, newest first, with the runs still going; one
// click opens a session in Chat.

import { ago, badge, bytes, clear, h } from "../lib/dom.js";

export function createSessionsPanel(app) {
  const body = h("tbody");
  const note = h("p", { class: "muted", testid: "sessions-note" });
  const el = h(
    "div",
    { class: "panel" },
    h(
      "header",
      { class: "panel-head row" },
      h("div", {}, h("h1", { text: "Sessions" }), note),
      h("button", { class: "ghost", text: "Refresh", testid: "sessions-refresh", onclick: () => load() }),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table", testid: "sessions-table" },
        h("thead", {}, h("tr", {}, ["Session", "Agent", "Updated", "Size", ""].map((t) => h("th", { text: t })))),
        body,
      ),
    ),
  );

  async function load() {
    if (!app.client || !app.client.connected) return;
    let result;
    try {
      result = await app.request("sessions.list", { limit: 200 });
    } catch (err) {
      note.textContent = `Could not list sessions: ${err.message}`;
      return;
    }
    const now = Date.now();
    note.textContent = `${result.count} session${result.count === 1 ? "" : "s"} on this gateway.`;
    if (!result.sessions.length) {
      clear(body, h("tr", {}, h("td", { colspan: "5", class: "muted", text: "No sessions yet: send a message in Chat." })));
      return;
    }
    clear(
      body,
      result.sessions.map((row) =>
        h(
          "tr",
          { testid: "session-row" },
          h("td", { "data-label": "Session", class: "mono small" }, h("span", { dir: "auto", text: row.key }), row.activeRunIds && row.activeRunIds.length ? badge("replying", "accent") : null),
          h("td", { "data-label": "Agent", text: row.agentId }),
          h("td", { "data-label": "Updated", class: "small", text: ago(now - row.updatedAt) }),
          h("td", { "data-label": "Size", class: "small", text: bytes(row.sizeBytes) }),
          h(
            "td",
            { class: "right" },
            h("button", {
              class: "ghost small",
              text: "Open in chat",
              onclick: () => {
                const chat = app.panels.find((p) => p.id === "chat");
                chat.open(row.key);
                app.show("chat");
              },
            }),
          ),
        ),
      ),
    );
  }

  app.store.on("refresh", () => {
    if (!el.hidden) load();
  });
  return { id: "sessions", title: "Sessions", el, onShow: load };
}
