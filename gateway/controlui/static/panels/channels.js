// Channels: each messaging account's state from channels.status (PROTOCOL.md 7.10), with
// Start / Stop / Restart (channels.start|stop|restart) and a live probe. Polled every 30 s
// while the panel is open.

import { ago, badge, clear, h } from "../lib/dom.js";

const TONES = { running: "ok", connected: "ok", starting: "info", backoff: "warn", stopped: "muted", error: "bad", crashloop: "bad" };

function stateOf(account) {
  if (account.state) return account.state;
  if (account.running) return account.connected === false ? "starting" : "running";
  return account.enabled === false ? "disabled" : "stopped";
}

export function createChannelsPanel(app) {
  const content = h("div", { testid: "channels-content" });
  const note = h("p", { class: "muted", testid: "channels-note" });
  const probeButton = h("button", { class: "ghost", text: "Probe now", testid: "channels-probe" });
  const el = h(
    "div",
    { class: "panel" },
    h("header", { class: "panel-head row" }, h("div", {}, h("h1", { text: "Channels" }), note), probeButton),
    content,
  );
  let timer = null;

  async function act(method, channel, accountId) {
    note.textContent = `${method.split(".")[1]} ${channel}/${accountId}…`;
    try {
      await app.request(method, { channel, accountId });
      note.textContent = `${channel}/${accountId}: ${method.split(".")[1]} requested.`;
    } catch (err) {
      note.textContent = `${channel}/${accountId}: ${err.message}`;
    }
    load(false);
  }

  function render(result) {
    const order = result.channelOrder || Object.keys(result.channelAccounts || {});
    if (!order.length) {
      clear(content, h("div", { class: "empty", testid: "channels-empty", text: "No channels are configured. Add one (for example channels.telegram) to the config file." }));
      return;
    }
    clear(
      content,
      order.map((id) => {
        const label = (result.channelLabels || {})[id] || id;
        const accounts = (result.channelAccounts || {})[id] || [];
        return h(
          "section",
          { class: "card", testid: "channel-card", data: { channel: id } },
          h("h2", { text: label }),
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "table" },
              h("thead", {}, h("tr", {}, ["Account", "State", "Activity", "Problem", ""].map((t) => h("th", { text: t })))),
              h(
                "tbody",
                {},
                accounts.map((account) => {
                  const state = stateOf(account);
                  const now = Date.now();
                  return h(
                    "tr",
                    { testid: "channel-row", data: { account: account.accountId, state } },
                    h("td", {}, h("span", { class: "strong", text: account.name || account.accountId }), account.mode ? h("div", { class: "muted small", text: account.mode }) : null),
                    h("td", {}, badge(state, TONES[state] || ""), account.linked === false ? badge("not linked", "warn") : null),
                    h(
                      "td",
                      { class: "small" },
                      h("div", { text: account.lastInboundAt ? `in ${ago(now - account.lastInboundAt)}` : "no inbound yet" }),
                      h("div", { class: "muted", text: account.lastOutboundAt ? `out ${ago(now - account.lastOutboundAt)}` : "" }),
                    ),
                    h("td", { class: "small error-text", dir: "auto", text: account.lastError || "" }),
                    h(
                      "td",
                      { class: "right nowrap" },
                      h("button", { class: "ghost small", text: "Start", testid: "channel-start", onclick: () => act("channels.start", id, account.accountId) }),
                      h("button", { class: "ghost small", text: "Stop", testid: "channel-stop", onclick: () => act("channels.stop", id, account.accountId) }),
                      h("button", { class: "ghost small", text: "Restart", testid: "channel-restart", onclick: () => act("channels.restart", id, account.accountId) }),
                    ),
                  );
                }),
              ),
            ),
          ),
          accounts.some((a) => a.probe) ? h("pre", { class: "probe", text: JSON.stringify(accounts.map((a) => a.probe).filter(Boolean), null, 2) }) : null,
        );
      }),
    );
  }

  async function load(probe) {
    if (!app.client || !app.client.connected) return;
    probeButton.disabled = true;
    try {
      const result = await app.request("channels.status", probe ? { probe: true, timeoutMs: 10000 } : {});
      render(result);
      note.textContent = `Updated ${new Date(result.ts || Date.now()).toLocaleTimeString()}${probe ? " (probed)" : ""}.`;
    } catch (err) {
      if (String(err.message).startsWith("unknown method")) {
        clear(content, h("div", { class: "empty", testid: "channels-empty", text: "This gateway does not report channels (channels.status is not available)." }));
        note.textContent = "";
      } else {
        note.textContent = `Could not read channel status: ${err.message}`;
      }
    } finally {
      probeButton.disabled = false;
    }
  }

  probeButton.addEventListener("click", () => load(true));
  app.store.on("refresh", () => {
    if (!el.hidden) load(false);
  });
  return {
    id: "channels",
    title: "Channels",
    el,
    onShow() {
      load(false);
      timer = setInterval(() => load(false), 30000);
    },
    onHide() {
      clearInterval(timer);
    },
  };
}
