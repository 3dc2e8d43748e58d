// Config: where the config file is and whether the gateway accepted it (from `status`): a
// file that fails validation is reported with the gateway's own message, which names the key.
// Below, a read-only view from `config.get` (CONTROL-UI.md 4): the file as written and the
// config in force with defaults, every secret already replaced by the gateway.

import { ago, badge, clear, h } from "../lib/dom.js";

function row(label, value, testid) {
  return h("div", { class: "kv" }, h("span", { class: "k", text: label }), h("span", { class: "v", testid, text: value }));
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function viewer(title, testid, text, open) {
  return h(
    "details",
    { class: "card config-view", testid, open },
    h("summary", { text: title }),
    h("pre", { class: "config-text", testid: `${testid}-text`, text }),
  );
}

export function createConfigPanel(app) {
  const store = app.store;
  const content = h("div", { class: "grid" });
  const views = h("div", { class: "config-views", testid: "config-views" });
  let snapshot = null;
  let snapshotError = null;
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
    views,
  );

  function renderViews() {
    if (snapshotError) {
      clear(views, h("p", { class: "error-text", testid: "config-get-error", text: `Could not read the config: ${snapshotError}` }));
      return;
    }
    if (!snapshot) {
      clear(views);
      return;
    }
    const issues = [...(snapshot.issues || []), ...(snapshot.warnings || [])];
    clear(
      views,
      h(
        "p",
        { class: "muted small" },
        "Read-only. Secrets (tokens, passwords, API keys) are hidden by the gateway before they reach this page; change the file with ",
        h("code", { text: "smart-agent-neo config set" }),
        " or an editor.",
      ),
      issues.length
        ? h(
            "ul",
            { class: "problem config-issues", testid: "config-issues" },
            issues.map((i) => h("li", { dir: "auto", text: i.path ? `${i.path}: ${i.message}` : i.message })),
          )
        : null,
      !snapshot.exists
        ? h("p", { class: "muted", testid: "config-raw-missing", text: `No file at ${snapshot.path}: the gateway runs on its embedded defaults.` })
        : typeof snapshot.raw === "string"
          ? viewer("File as written", "config-raw", snapshot.raw, true)
          : h("p", { class: "muted", testid: "config-raw-hidden", text: "The file's text is not shown: the gateway could not prove every secret in it hidden (it does not parse, or spells a secret with escapes)." }),
      viewer("Config in force (defaults included)", "config-effective", pretty(snapshot.config), !snapshot.exists),
    );
  }

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
    const [status, config] = await Promise.allSettled([app.request("status"), app.request("config.get")]);
    if (status.status === "fulfilled") store.setStatus(status.value);
    else clear(content, h("p", { class: "error-text", text: `Could not read status: ${status.reason.message}` }));
    snapshot = config.status === "fulfilled" ? config.value : null;
    snapshotError = config.status === "fulfilled" ? null : config.reason.message;
    renderViews();
  }

  store.on("status", render);
  render();
  return { id: "config", title: "Config", el, onShow: load };
}
