// Channels: each messaging account's state from channels.status (PROTOCOL.md 7.10), with
// Start / Stop / Restart (channels.start|stop|restart) and a live probe. Polled every 30 s
// while the panel is open.

import { ago, badge, clear, h } from "../lib/dom.js";

const TONES = { running: "ok", connected: "ok", starting: "info", stopping: "info", backoff: "warn", stopped: "", error: "bad", disabled: "" };

function probeText(probe) {
  if (!probe) return null;
  if (!probe.ok) return `Probe failed: ${probe.error || `status ${probe.status}`}`;
  const bot = probe.bot && probe.bot.username ? `@${probe.bot.username}` : "reachable";
  const hook = probe.webhook && probe.webhook.url ? " · a webhook is set" : "";
  return `Probe ok: ${bot} · ${probe.elapsedMs} ms${hook}`;
}

function stateOf(account) {
  if (account.state) return account.state;
  if (account.running) return account.connected === false ? "starting" : "running";
  return account.enabled === false ? "disabled" : "stopped";
}

export function createChannelsPanel(app) {
  const content = h("div", { testid: "channels-content" });
  const note = h("span", { testid: "channels-note" });
  const updated = h("span", { class: "muted", testid: "channels-updated" });
  const probeButton = h("button", { class: "ghost", text: "Probe now", testid: "channels-probe" });
  const el = h(
    "div",
    { class: "panel" },
    h("header", { class: "panel-head row" }, h("div", {}, h("h1", { text: "Channels" }), h("p", { class: "muted" }, updated, " ", note)), probeButton),
    content,
  );
  let timer = null;

  async function act(method, channel, accountId) {
    const verb = method.split(".")[1];
    note.textContent = `${verb} ${channel}/${accountId}…`;
    try {
      const result = await app.request(method, { channel, accountId });
      const done = { start: "Started", stop: "Stopped", restart: "Restarted" }[verb];
      const ok = verb === "stop" ? result.stopped : result.started;
      note.textContent = ok === false ? `${verb} requested for ${channel}/${accountId}, but it did not take effect yet.` : `${done} ${channel}/${accountId}.`;
    } catch (err) {
      note.textContent = `${channel}/${accountId}: ${err.message}`;
    }
    load(false);
  }

  let settleTimer = null;

  function render(result) {
    const order = result.channelOrder || Object.keys(result.channelAccounts || {});
    // an account on its way somewhere is read again in a second, not in 30
    const moving = Object.values(result.channelAccounts || {}).flat().some((a) => ["starting", "stopping", "backoff"].includes(stateOf(a)));
    clearTimeout(settleTimer);
    if (moving && !el.hidden) settleTimer = setTimeout(() => load(false), 1000);
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
              h("thead", {}, h("tr", {}, ["Account", "State", "Activity", "Details", ""].map((t) => h("th", { text: t })))),
              h(
                "tbody",
                {},
                accounts.map((account) => {
                  const state = stateOf(account);
                  const now = Date.now();
                  const bot = account.bot && account.bot.username ? `@${account.bot.username}` : null;
                  let detail = account.stopReason ? `(${account.stopReason})` : "";
                  if (state === "backoff" && account.nextRetryAt) detail = `retry in ${Math.max(0, Math.round((account.nextRetryAt - now) / 1000))}s`;
                  const probe = probeText(account.probe);
                  return h(
                    "tr",
                    { testid: "channel-row", data: { account: account.accountId, state } },
                    h(
                      "td",
                      { "data-label": "Account" },
                      h("span", { class: "strong", text: account.name || account.accountId }),
                      h("div", { class: "muted small", text: [bot, account.mode].filter(Boolean).join(" · ") }),
                    ),
                    h(
                      "td",
                      { "data-label": "State" },
                      badge(state, TONES[state] ?? "", "channel-state"),
                      account.linked === false ? badge("not linked", "warn") : null,
                      detail ? h("span", { class: "muted small", text: ` ${detail}` }) : null,
                    ),
                    h(
                      "td",
                      { class: "small", "data-label": "Activity" },
                      h("div", { text: account.lastInboundAt ? `in ${ago(now - account.lastInboundAt)}` : "no inbound yet" }),
                      h("div", { class: "muted", text: account.lastOutboundAt ? `out ${ago(now - account.lastOutboundAt)}` : "" }),
                    ),
                    h(
                      "td",
                      { class: "small", "data-label": "Details" },
                      account.lastError ? h("div", { class: "error-text", dir: "auto", text: account.lastError }) : null,
                      probe ? h("div", { class: probe.startsWith("Probe ok") ? "muted" : "error-text", testid: "channel-probe", text: probe }) : null,
                    ),
                    h(
                      "td",
                      { class: "right nowrap", "data-label": "" },
                      h("button", { class: "ghost small", text: "Start", testid: "channel-start", onclick: () => act("channels.start", id, account.accountId) }),
                      h("button", { class: "ghost small", text: "Stop", testid: "channel-stop", onclick: () => act("channels.stop", id, account.accountId) }),
                      h("button", { class: "ghost small", text: "Restart", testid: "channel-restart", onclick: () => act("channels.restart", id, account.accountId) }),
                    ),
                  );
                }),
              ),
            ),
          ),
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
      updated.textContent = `Updated ${new Date(result.ts || Date.now()).toLocaleTimeString()}${probe ? " (probed)" : ""}.`;
    } catch (err) {
      if (String(err.message).startsWith("unknown method")) {
        clear(content, h("div", { class: "empty", testid: "channels-empty", text: "This gateway does not report channels (channels.status is not available)." }));
        updated.textContent = "";
      } else {
        updated.textContent = `Could not read channel status: ${err.message}`;
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
