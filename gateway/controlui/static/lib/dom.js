// Building the page: elements and text only. Nothing here (or anywhere in the UI) parses a
// string as HTML: whatever the gateway or a model sends is shown as text.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "data") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function ago(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m ago`;
  return `${Math.floor(hrs / 24)}d ago`;
}

export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const hrs = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = d ? [`${d}d`, hrs && `${hrs}h`, m && `${m}m`] : hrs ? [`${hrs}h`, m && `${m}m`] : m ? [`${m}m`, s % 60 && `${s % 60}s`] : [`${s}s`];
  return parts.filter(Boolean).join(" ");
}

export function clock(ts) {
  if (!ts) return "—";
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function badge(text, tone, testid) {
  return h("span", { class: `badge ${tone || ""}`, text, testid });
}

export function field(label, value, testid) {
  return h("div", { class: "field" }, h("dt", { text: label }), h("dd", { testid, text: value }));
}

export function uuid() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

const ICONS = {
  overview: "M4 4h7v7H4z M13 4h7v7h-7z M4 13h7v7H4z M13 13h7v7h-7z",
  chat: "M4 5h16v11H9l-5 4z",
  sessions: "M9 6h11 M9 12h11 M9 18h11 M4.5 6h.5 M4.5 12h.5 M4.5 18h.5",
  instances: "M3 5h18v11H3z M8 20h8 M12 16v4",
  channels: "M21 3 10 14 M21 3l-6.5 18-4.5-7-7-4.5z",
  logs: "M6 3h9l4 4v14H6z M9 12h7 M9 16h7 M9 8h3",
  nodes: "M7 3h10v18H7z M11 18h2 M3 8v8 M21 8v8",
  config: "M4 7h9 M17 7h3 M15 5v4 M4 17h3 M11 17h9 M9 15v4",
  debug: "M4 5h16v14H4z M7.5 9.5l3 2.5-3 2.5 M12.5 15h4",
};

// Icons are drawn as SVG elements (no markup strings, no image requests).
export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || ICONS.overview);
  svg.append(path);
  return svg;
}
