// Config: where the config file is and whether the gateway accepted it (from `status`): a
// file that fails validation is reported with the gateway's own message, which names the key.

import { ago, badge, clear, h } from "../lib/dom.js";

function row(label, value, testid) {
  return h("div", { class: "kv" }, h("span", { class: "k", text: label }), h("span", { class: "v", testid, text: value }));
}

export function createConfigPanel(app) {
  const store = app.store;
  const content = h("div", { class: "grid" });
  const el = h(
    "div",
    { class: "panel" },
    h(
      "header",
      { class: "panel-head row" },
      h("div", {}, h("h1", { text: "Config" }), h("p", { class: "muted", text: "The file the gateway runs with, and whether it is valid." })),
      h("button", { class: "ghost", text: "Check again", testid: "config-refresh", onclick: () => load() }),
    ),
    content,
  );

  function render() {
    const status = store.status;
    if (!status) {
      clear(content, h("p", { class: "muted", text: "Waiting for the gateway…" }));
      return;
    }
    const config = status.config;
    const gw = status.gateway;
    clear(
      content,
      h(
        "section",
        { class: "card", testid: "config-status" },
        h("h2", { text: "Validation" }),
        h("div", { class: "kv" }, h("span", { class: "k", text: "State" }), badge(config.valid ? "valid" : "invalid", config.valid ? "ok" : "bad", "config-valid")),
        config.problem
          ? h("div", { class: "problem", testid: "config-problem" }, h("strong", { text: "The file on disk was not applied: " }), h("span", { dir: "auto", text: config.problem }))
          : h("p", { class: "muted small", text: config.exists ? "The file on disk is what the gateway runs." : "No config file: the gateway runs on its embedded defaults." }),
        row("File", config.path, "config-path"),
        row("Exists", config.exists ? "yes" : "no"),
        row("Reload mode", config.reloadMode),
        row("Reloads / restarts", `${config.reloads} / ${config.restarts}`),
        row("Last reload", config.lastReloadAt ? ago(Date.now() - config.lastReloadAt) : "never"),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", { text: "Process" }),
        row("Listening", gw.url),
        row("Bind", `${gw.bind} · port ${gw.port}`),
        row("Auth mode", gw.authMode),
        row("Profile", gw.profile || "default"),
        row("State dir", gw.stateDir),
        row("PID", String(gw.pid)),
      ),
    );
  }

  async function load() {
    try {
      store.setStatus(await app.request("status"));
    } catch (err) {
      clear(content, h("p", { class: "error-text", text: `Could not read status: ${err.message}` }));
    }
  }

  store.on("status", render);
  render();
  return { id: "config", title: "Config", el, onShow: load };
}
