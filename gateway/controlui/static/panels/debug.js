// Debug: the last 250 events as they arrived, and a box to call any method by hand.

import { clear, clock, h } from "../lib/dom.js";

export function createDebugPanel(app) {
  const store = app.store;
  const events = h("div", { class: "event-log", testid: "debug-events" });
  const method = h("input", { type: "text", value: "health", "aria-label": "Method", testid: "debug-method" });
  const params = h("textarea", { rows: "3", "aria-label": "Params (JSON)", testid: "debug-params" });
  params.value = "{}";
  const result = h("pre", { class: "result", testid: "debug-result" });
  const hideTicks = h("input", { type: "checkbox", checked: true });
  const form = h(
    "form",
    { class: "rpc" },
    h("label", {}, "Method", method),
    h("label", {}, "Params (JSON)", params),
    h("button", { class: "primary", type: "submit", text: "Call", testid: "debug-call" }),
  );
  const el = h(
    "div",
    { class: "panel" },
    h("header", { class: "panel-head" }, h("h1", { text: "Debug" }), h("p", { class: "muted", text: "Events as they arrive, and any method by hand (admin)." })),
    h(
      "div",
      { class: "grid two" },
      h("section", { class: "card" }, h("h2", { text: "Call a method" }), form, result),
      h("section", { class: "card" }, h("div", { class: "row" }, h("h2", { text: "Events" }), h("label", { class: "check" }, hideTicks, " hide ticks")), events),
    ),
  );

  function line(entry) {
    const frame = entry.frame;
    const text = JSON.stringify(frame.payload);
    return h(
      "details",
      { class: "event" },
      h("summary", {}, h("span", { class: "muted", text: clock(entry.at) }), " ", h("strong", { text: frame.event }), frame.seq ? h("span", { class: "muted", text: ` #${frame.seq}` }) : null, " ", h("span", { class: "muted small", text: text ? text.slice(0, 120) : "" })),
      h("pre", { text: JSON.stringify(frame, null, 2) }),
    );
  }

  function render() {
    const shown = store.events.filter((e) => !(hideTicks.checked && e.frame.event === "tick"));
    clear(events, shown.slice(-250).reverse().map(line));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let value;
    try {
      value = params.value.trim() ? JSON.parse(params.value) : {};
    } catch (err) {
      result.textContent = `Params are not JSON: ${err.message}`;
      return;
    }
    result.textContent = "…";
    try {
      result.textContent = JSON.stringify(await app.request(method.value.trim(), value), null, 2);
    } catch (err) {
      result.textContent = `${err.code}: ${err.message}${err.details ? `\n${JSON.stringify(err.details, null, 2)}` : ""}`;
    }
  });
  hideTicks.addEventListener("change", render);
  store.on("debug", (frame) => {
    if (el.hidden || (hideTicks.checked && frame.event === "tick")) return;
    events.prepend(line(store.events[store.events.length - 1]));
    while (events.childElementCount > 250) events.lastElementChild.remove();
  });
  return { id: "debug", title: "Debug", el, onShow: render };
}
