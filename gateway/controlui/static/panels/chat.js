// Chat (WebChat): one session's transcript, replies streamed as `chat` events, a Stop button.
//
// Sending adds the user's bubble at once, then calls chat.send with a fresh idempotencyKey
// (which is the runId). Events are filtered by sessionKey; per run, events at or below the
// highest seq seen are dropped, and a forward gap reloads history. `delta` appends deltaText
// unless the cumulative message is present (then the longer text wins); `final` finishes the
// bubble; `aborted` keeps the partial text and marks it stopped; `error` shows the reason.
// Every reconnect and seq gap reloads history (the durable truth), and a run still streaming
// then is picked up from `inFlightRun`. Nothing is ever re-sent by itself.

import { bytes, clear, clock, h, uuid } from "../lib/dom.js";

const MAX_FILE_BYTES = 5 * 1024 * 1024;
const LONG_CHARS = 2500;

function textOf(message) {
  if (!message) return "";
  if (typeof message.content === "string") return message.content;
  return (message.content || [])
    .filter((block) => block.type === "text" && typeof block.text === "string")
    .map((block) => block.text)
    .join("\n");
}

export function createChatPanel(app) {
  const store = app.store;
  let sessionKey = null;
  const runs = new Map(); // runId -> {bubble, text, seq, active}
  let pendingFiles = [];
  let historyToken = 0;

  const list = h("div", { class: "messages", testid: "chat-messages", "aria-live": "polite" });
  const sessionLabel = h("span", { class: "mono small", testid: "chat-session" });
  const input = h("textarea", {
    rows: "2",
    placeholder: "Message your assistant…  (Enter sends, Shift+Enter for a new line)",
    testid: "chat-input",
    "aria-label": "Message",
  });
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, testid: "chat-file" });
  const chips = h("div", { class: "chips", testid: "chat-attachments" });
  const sendButton = h("button", { class: "primary", type: "submit", text: "Send", testid: "chat-send" });
  const stopButton = h("button", { class: "danger", type: "button", text: "Stop", testid: "chat-stop", hidden: true });
  const attachButton = h("button", { class: "ghost", type: "button", text: "Attach", title: "Attach images or text files", testid: "chat-attach" });
  const status = h("div", { class: "composer-status muted small", testid: "chat-status" });
  const form = h(
    "form",
    { class: "composer", testid: "chat-form" },
    chips,
    h("div", { class: "composer-row" }, attachButton, input, h("div", { class: "composer-buttons" }, stopButton, sendButton)),
    status,
    fileInput,
  );
  const el = h(
    "div",
    { class: "panel chat-panel" },
    h(
      "header",
      { class: "panel-head row" },
      h("div", {}, h("h1", { text: "Chat" }), h("p", { class: "muted" }, "Session ", sessionLabel)),
      h("button", { class: "ghost", text: "Reload history", testid: "chat-reload", onclick: () => loadHistory() }),
    ),
    list,
    form,
  );

  // -- bubbles ---------------------------------------------------------------------------

  function scrollDown() {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 160;
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }

  function bubble(role, text, extra = {}) {
    const body = h("div", { class: "bubble-text", dir: "auto", text });
    const meta = h("div", { class: "bubble-meta" });
    const el = h("div", { class: `msg msg-${role}`, testid: `msg-${role}`, data: extra.data || {} }, body, meta);
    if (extra.time) meta.append(h("span", { text: clock(extra.time) }));
    list.append(el);
    const made = { el, body, meta };
    foldIfLong(made);
    return made;
  }

  // A very long message is shown folded, with a button to unfold it.
  function foldIfLong(b) {
    const size = (b.body.textContent || "").length;
    if (size <= LONG_CHARS || b.el.querySelector(".fold")) return;
    b.body.classList.add("folded");
    const toggle = h("button", {
      type: "button",
      class: "fold",
      text: `Show all (${size.toLocaleString()} characters)`,
      onclick: () => {
        const folded = b.body.classList.toggle("folded");
        toggle.textContent = folded ? `Show all (${size.toLocaleString()} characters)` : "Show less";
      },
    });
    b.el.insertBefore(toggle, b.meta);
  }

  function setMeta(b, ...items) {
    clear(b.meta, items);
  }

  function activeRuns() {
    return [...runs.entries()].filter(([, run]) => run.active);
  }

  function updateButtons() {
    const busy = activeRuns().length > 0;
    stopButton.hidden = !busy;
    status.textContent = busy ? "Assistant is replying…" : "";
  }

  function runBubble(runId) {
    let run = runs.get(runId);
    if (!run) {
      const b = bubble("assistant", "", { data: { runId, state: "streaming" } });
      b.el.classList.add("streaming");
      setMeta(b, h("span", { class: "typing", "aria-label": "typing" }, h("i"), h("i"), h("i")));
      run = { bubble: b, text: "", seq: 0, active: true };
      runs.set(runId, run);
      updateButtons();
    }
    return run;
  }

  function finishRun(runId, state, note, tone) {
    const run = runs.get(runId);
    if (!run) return;
    run.active = false;
    run.bubble.el.classList.remove("streaming");
    run.bubble.el.dataset.state = state;
    if (state === "stopped") run.bubble.el.classList.add("stopped");
    if (state === "error") run.bubble.el.classList.add("failed");
    setMeta(run.bubble, h("span", { text: clock(Date.now()) }), note ? h("span", { class: `tag ${tone || ""}`, testid: `msg-${state}`, text: note }) : null);
    foldIfLong(run.bubble);
    updateButtons();
  }

  function showText(run, text) {
    run.text = text;
    run.bubble.body.textContent = text;
    scrollDown();
  }

  // -- history -----------------------------------------------------------------------------

  function renderHistoryMessage(message) {
    const text = textOf(message);
    if (message.role === "user") {
      const b = bubble("user", text, { time: message.timestamp });
      for (const block of message.content || []) {
        if (block.type === "image") {
          b.body.append(h("div", { class: "attachment" }, `Image ${block.fileName || ""} (${block.mimeType || "image"}, ${bytes(block.bytes)})`));
        }
      }
      return;
    }
    if (message.role === "assistant") {
      const calls = (message.content || []).filter((block) => block.type === "toolCall");
      if (!text && calls.length) {
        for (const call of calls) list.append(h("div", { class: "tool-line", testid: "msg-tool", text: `Used tool ${call.name}` }));
        return;
      }
      const b = bubble("assistant", text, { time: message.timestamp, data: { runId: message.runId || "", state: message.abort ? "stopped" : "final" } });
      if (message.abort || message.stopReason === "aborted") {
        b.el.classList.add("stopped");
        b.meta.append(h("span", { class: "tag", testid: "msg-stopped", text: "stopped" }));
      } else if (message.label) {
        b.meta.append(h("span", { class: "tag info", text: message.label }));
      }
      for (const call of calls) list.append(h("div", { class: "tool-line", testid: "msg-tool", text: `Used tool ${call.name}` }));
      return;
    }
    if (message.role === "toolResult") return; // shown as "Used tool ..." lines
    if (message.role === "system") {
      if (message.stopReason === "aborted") return; // the stopped bubble says it already
      list.append(h("div", { class: `system-line ${message.stopReason || ""}`, dir: "auto", testid: "msg-system", text }));
    }
  }

  async function loadHistory() {
    if (!sessionKey || !app.client || !app.client.connected) return;
    const token = ++historyToken;
    let result;
    try {
      result = await app.request("chat.history", { sessionKey, limit: 200 });
    } catch (err) {
      status.textContent = `Could not load history: ${err.message}`;
      return;
    }
    if (token !== historyToken) return; // a newer load won
    runs.clear();
    clear(list);
    if (result.hasMore) list.append(h("div", { class: "system-line", text: "Older messages are not shown." }));
    for (const message of result.messages || []) renderHistoryMessage(message);
    if (!result.messages || !result.messages.length) {
      list.append(h("div", { class: "empty", testid: "chat-empty", text: "No messages yet. Say hello!" }));
    }
    if (result.inFlightRun) {
      const run = runBubble(result.inFlightRun.runId);
      showText(run, result.inFlightRun.text || "");
    }
    updateButtons();
    list.scrollTop = list.scrollHeight;
  }

  // -- live events -----------------------------------------------------------------------

  function onChat(event) {
    if (!event || event.sessionKey !== sessionKey || typeof event.runId !== "string") return;
    const known = runs.get(event.runId);
    if (known && Number.isInteger(event.seq)) {
      if (event.seq <= known.seq) return; // duplicate or old
      if (known.seq && event.seq > known.seq + 1) {
        loadHistory(); // we missed part of this run
        return;
      }
    }
    if (!known && event.state !== "delta") {
      // the end of a run we never saw stream (a note, another client's short run): the
      // history has it
      loadHistory();
      return;
    }
    const run = known || runBubble(event.runId);
    if (Number.isInteger(event.seq)) run.seq = event.seq;
    const cumulative = event.message ? textOf(event.message) : null;
    if (event.state === "delta") {
      let next = run.text;
      if (event.replace) next = event.deltaText || "";
      else if (typeof event.deltaText === "string") next = run.text + event.deltaText;
      if (cumulative !== null && cumulative.length >= next.length) next = cumulative;
      showText(run, next);
    } else if (event.state === "final") {
      finishRun(event.runId, "final");
      if (cumulative !== null) showText(run, cumulative);
      else loadHistory(); // no snapshot with the final: the transcript has the whole reply
    } else if (event.state === "aborted") {
      if (cumulative !== null && cumulative.length >= run.text.length) showText(run, cumulative);
      if (!run.text) run.bubble.body.textContent = "(stopped before any reply)";
      finishRun(event.runId, "stopped", "stopped");
    } else if (event.state === "error") {
      if (cumulative !== null) showText(run, cumulative);
      const reason = event.errorMessage || "the run failed";
      run.bubble.el.append(h("div", { class: "error-text", dir: "auto", testid: "msg-error-text", text: reason }));
      finishRun(event.runId, "error", event.errorKind && event.errorKind !== "unknown" ? event.errorKind : "error", "bad");
    }
  }

  // -- sending -------------------------------------------------------------------------------

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function addFiles(files) {
    for (const file of files) {
      if (file.size > MAX_FILE_BYTES) {
        status.textContent = `${file.name} is larger than 5 MB.`;
        continue;
      }
      const content = await readFile(file);
      pendingFiles.push({ fileName: file.name, mimeType: file.type || undefined, content, size: file.size });
    }
    renderChips();
  }

  function renderChips() {
    clear(
      chips,
      pendingFiles.map((file, index) =>
        h(
          "span",
          { class: "chip" },
          file.mimeType && file.mimeType.startsWith("image/") ? h("img", { src: file.content, alt: "" }) : null,
          h("span", { text: `${file.fileName} · ${bytes(file.size)}` }),
          h("button", {
            type: "button",
            class: "chip-x",
            "aria-label": `Remove ${file.fileName}`,
            text: "×",
            onclick: () => {
              pendingFiles.splice(index, 1);
              renderChips();
            },
          }),
        ),
      ),
    );
  }

  async function send() {
    const message = input.value;
    if (!message.trim() && !pendingFiles.length) return;
    if (!app.client || !app.client.connected) {
      status.textContent = "Not connected: your message was not sent.";
      return;
    }
    const files = pendingFiles;
    const idempotencyKey = uuid();
    input.value = "";
    pendingFiles = [];
    renderChips();
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    const mine = bubble("user", message, { time: Date.now(), data: { runId: idempotencyKey } });
    list.scrollTop = list.scrollHeight;
    for (const file of files) {
      if (file.mimeType && file.mimeType.startsWith("image/")) mine.body.append(h("img", { class: "thumb", src: file.content, alt: file.fileName }));
      else mine.body.append(h("div", { class: "attachment", text: `File ${file.fileName} (${bytes(file.size)})` }));
    }
    list.scrollTop = list.scrollHeight;
    const params = { sessionKey, message, deliver: false, idempotencyKey };
    if (files.length) params.attachments = files.map(({ fileName, mimeType, content }) => ({ fileName, mimeType, content }));
    await deliver(params, mine);
  }

  // A send whose answer was lost with the connection is sent again after the reconnect
  // with the same idempotencyKey: the gateway then answers "in_flight" or how it ended,
  // never a second run (PROTOCOL.md 10). Any other failure is shown on the bubble.
  const unanswered = [];

  async function deliver(params, mine) {
    try {
      const ack = await app.request("chat.send", params);
      const waiting = mine.el.querySelector(".resend-note");
      if (waiting) waiting.remove();
      if (ack && ack.runId && (ack.status === "started" || ack.status === "in_flight")) runBubble(ack.runId);
      else if (ack && ack.runId) loadHistory(); // it ended while we were away
      else if (ack && "aborted" in ack) {
        mine.meta.append(h("span", { class: "tag", text: ack.aborted ? "stopped the reply" : "nothing to stop" }));
      }
    } catch (err) {
      if (err.code === "UNAVAILABLE" && /connection closed|not connected/.test(err.message)) {
        if (!mine.el.querySelector(".resend-note")) mine.el.append(h("div", { class: "resend-note small", text: "Connection lost: will send again when reconnected." }));
        unanswered.push([params, mine]);
        return;
      }
      mine.el.classList.add("failed");
      mine.el.append(h("div", { class: "error-text", testid: "send-error", text: `Not sent: ${err.message}` }));
    }
  }

  async function stop() {
    const active = activeRuns();
    stopButton.disabled = true;
    try {
      for (const [runId] of active) await app.request("chat.abort", { sessionKey, runId });
    } catch (err) {
      status.textContent = `Stop failed: ${err.message}`;
    } finally {
      stopButton.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  stopButton.addEventListener("click", stop);
  attachButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    addFiles([...fileInput.files]);
    fileInput.value = "";
  });

  function open(key) {
    if (key === sessionKey) return;
    sessionKey = key;
    sessionLabel.textContent = key;
    runs.clear();
    clear(list);
    loadHistory();
  }

  store.on("chat", onChat);
  store.on("hello", () => {
    if (!sessionKey) {
      sessionKey = store.mainSessionKey; // the resync that follows every hello loads it
      sessionLabel.textContent = sessionKey;
    }
  });
  store.on("resync", () => loadHistory());
  store.on("hello", () => {
    for (const [params, mine] of unanswered.splice(0)) {
      if (params.sessionKey === sessionKey) deliver(params, mine);
    }
  });
  return {
    id: "chat",
    title: "Chat",
    el,
    open,
    onShow() {
      input.focus();
      list.scrollTop = list.scrollHeight;
    },
  };
}
