// Logs: the gateway's file log through logs.tail, followed with its cursor every 2 s while
// the panel is open (PROTOCOL.md 7.9). JSON lines are shown as time, level, subsystem and
// message; a filter narrows what is shown.

import { clear, h } from "../lib/dom.js";

const MAX_LINES = 1500;
const MAX_EXTRA = 240;
const LEVEL = { trace: "TRC", debug: "DBG", info: "INF", warn: "WRN", warning: "WRN", error: "ERR", fatal: "FTL" };

function parse(line) {
  try {
    const value = JSON.parse(line);
    if (value && typeof value === "object") {
      const { time, ts, level, subsystem, logger, msg, message, 0: zero, _meta: meta, ...rest } = value;
      void zero;
      void meta;
      const when = time || ts;
      return {
        time: when ? new Date(when).toLocaleTimeString() : "",
        level: String(level || "info").toLowerCase(),
        source: subsystem || logger || "",
        text: msg || message || "",
        extra: Object.entries(rest)
          .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
          .join(" "),
      };
    }
  } catch (err) {
    // not JSON: shown as it is
  }
  return { time: "", level: "", source: "", text: line, extra: "" };
}

export function createLogsPanel(app) {
  const out = h("div", { class: "log", testid: "logs-lines", role: "log" });
  const filter = h("input", { type: "search", placeholder: "Filter", testid: "logs-filter", "aria-label": "Filter log lines" });
  const follow = h("input", { type: "checkbox", checked: true, id: "logs-follow" });
  const note = h("span", { class: "muted small", testid: "logs-note" });
  const el = h(
    "div",
    { class: "panel logs-panel" },
    h(
      "header",
      { class: "panel-head row" },
      h("div", {}, h("h1", { text: "Logs" }), note),
      h("div", { class: "row gap" }, filter, h("label", { class: "check" }, follow, " Follow")),
    ),
    out,
  );
  let cursor = null;
  let timer = null;
  let lines = [];

  function matches(entry) {
    const wanted = filter.value.trim().toLowerCase();
    if (!wanted) return true;
    return `${entry.level} ${entry.source} ${entry.text} ${entry.extra}`.toLowerCase().includes(wanted);
  }

  function row(entry) {
    return h(
      "div",
      { class: `log-line lvl-${entry.level}`, testid: "log-line" },
      h("span", { class: "log-time", text: entry.time }),
      h("span", { class: "log-level", text: LEVEL[entry.level] || entry.level.slice(0, 3) }),
      h("span", { class: "log-source", text: entry.source }),
      h("span", { class: "log-text", dir: "auto", text: entry.text }),
      entry.extra
        ? h("span", {
            class: "log-extra",
            title: entry.extra.length > MAX_EXTRA ? entry.extra : null,
            text: entry.extra.length > MAX_EXTRA ? `${entry.extra.slice(0, MAX_EXTRA)}…` : entry.extra,
          })
        : null,
    );
  }

  function renderAll() {
    clear(out, lines.filter(matches).map(row));
    if (follow.checked) out.scrollTop = out.scrollHeight;
  }

  async function poll() {
    if (!app.client || !app.client.connected) return;
    try {
      const result = await app.request("logs.tail", cursor === null ? { limit: 300 } : { cursor, limit: 500 });
      if (result.reset) lines = [];
      cursor = result.cursor;
      const fresh = (result.lines || []).map(parse);
      lines = lines.concat(fresh).slice(-MAX_LINES);
      note.textContent = result.file ? `${result.file}` : "";
      if (fresh.length || result.reset) {
        const shown = fresh.filter(matches).map(row);
        if (result.reset) renderAll();
        else out.append(...shown);
        while (out.childElementCount > MAX_LINES) out.firstElementChild.remove();
        if (follow.checked) out.scrollTop = out.scrollHeight;
      }
    } catch (err) {
      note.textContent = `Could not read the log: ${err.message}`;
    }
  }

  filter.addEventListener("input", renderAll);
  app.store.on("hello", () => {
    cursor = null; // a restarted gateway may write another file
    lines = [];
    clear(out);
  });
  return {
    id: "logs",
    title: "Logs",
    el,
    onShow() {
      poll();
      timer = setInterval(poll, 2000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
