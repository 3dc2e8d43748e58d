"""The twelve browser scenarios of CONTROL-UI.md 13, in Debian's Chromium, each asserting
what a person would see on the page (not only that a request was made)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from .conftest import (
    TOKEN,
    GatewayProc,
    Operator,
    TelegramDouble,
    Watched,
    sign_in,
    start_gateway,
    watch_page,
)
from .mockmodel import chunks

# CONTROL-UI.md 1, verbatim: the one fixed string
SPEC_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
HEADERS = {
    "content-security-policy": SPEC_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-cache",
}


def wait_sent(w: Watched, since: int, *methods: str, timeout: float = 5) -> list[str]:
    """The methods the page sent after frame ``since``, once all of ``methods`` are among them."""
    deadline = time.monotonic() + timeout
    while True:
        sent = [str(f.get("method")) for f in w.sent[since:] if f.get("type") == "req"]
        if set(methods) <= set(sent) or time.monotonic() > deadline:
            return sent
        w.page.wait_for_timeout(50)


def connected(w: Watched) -> None:
    expect(w.page.get_by_test_id("connection-state")).to_have_text("Connected")


def open_chat(w: Watched) -> None:
    w.page.get_by_test_id("nav-chat").click()
    expect(w.page.get_by_test_id("chat-session")).to_have_text("agent:main:main")


def send(w: Watched, text: str) -> None:
    w.page.get_by_test_id("chat-input").fill(text)
    w.page.get_by_test_id("chat-send").click()


def reply_bubbles(w: Watched) -> object:
    return w.page.get_by_test_id("msg-assistant")


# -- 1. login with a token ---------------------------------------------------------------


def test_1_login_with_token(gateway: GatewayProc, watched: Watched) -> None:
    page = watched.page
    page.goto(gateway.url)
    expect(page.get_by_test_id("login-form")).to_be_visible()
    expect(page.get_by_test_id("login-form")).to_contain_text("gateway.auth.token")
    watched.shot("login")
    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("connect-button").click()
    connected(watched)
    expect(page.get_by_test_id("overview-version")).to_have_text("0.1.0")
    expect(page.get_by_test_id("overview-protocol")).to_have_text("4")
    expect(page.get_by_test_id("overview-health")).to_have_text("healthy")
    expect(page.get_by_test_id("login")).to_be_hidden()
    local = page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert TOKEN not in local
    assert TOKEN in page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    watched.shot("overview")
    # Forget: the token is gone from the tab and the form is back
    page.get_by_test_id("forget-button").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert TOKEN not in page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")


# -- 2. fragment login ---------------------------------------------------------------------


def test_2_fragment_login_and_query_tokens_refused(gateway: GatewayProc, watched: Watched) -> None:
    """FAILURE-MODES 22: the token never stays in a URL, a log or a Referer."""
    page = watched.page
    page.goto(f"{gateway.url}#token={TOKEN}")
    connected(watched)
    assert "token" not in page.url
    assert TOKEN not in page.evaluate("location.href")
    assert TOKEN not in page.evaluate("JSON.stringify(history.state)")
    refused = httpx.get(f"{gateway.url}?token={TOKEN}", timeout=10)
    assert refused.status_code == 400
    assert refused.text == "Token must be passed as #token=… (query parameters are not allowed)."
    # a gatewayUrl in the query is never followed: the page talks to its own origin only
    other = watch_page(page.context.new_page())
    other.page.goto(f"{gateway.url}?gatewayUrl=ws://127.0.0.1:9/#token={TOKEN}")
    connected(other)
    assert [ws.url for ws in other.sockets] == [f"{gateway.ws_url}/"]
    log = gateway.log_text()
    assert "http request" in log  # the access log (debug) was written ...
    assert TOKEN not in log  # ... and never holds the token
    assert TOKEN not in gateway.output()


# -- 3. wrong token --------------------------------------------------------------------------


def test_3_wrong_token_says_so_and_does_not_retry(gateway: GatewayProc, watched: Watched) -> None:
    """FAILURE-MODES 16: a terminal auth error stops the reconnect loop."""
    page = watched.page
    page.clock.install()
    sign_in(watched, gateway, token="not-the-token")
    error = page.get_by_test_id("login-error")
    expect(error).to_contain_text("gateway token mismatch")
    expect(error).to_contain_text("AUTH_TOKEN_MISMATCH")
    expect(page.get_by_test_id("login-form")).to_contain_text("gateway.auth.token")
    expect(page.get_by_test_id("connection-state")).to_have_text("Not signed in")
    watched.shot("wrong-token")
    page.clock.fast_forward(10_000)  # ten seconds of the page's timers
    page.clock.fast_forward(10_000)
    page.wait_for_timeout(300)
    assert len(watched.sockets) == 1  # no reconnect storm
    # the right token then works from the same form
    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("connect-button").click()
    connected(watched)


# -- 4. health and presence live ---------------------------------------------------------------


def test_4_health_and_presence_update_live(gateway: GatewayProc, watched: Watched) -> None:
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    expect(page.get_by_test_id("tile-sessions")).to_have_text("0")
    checked = page.get_by_test_id("overview-health-ts").get_attribute("data-ts")
    page.get_by_test_id("nav-instances").click()
    rows = page.get_by_test_id("instance-row")
    expect(rows).to_have_count(2)  # this gateway and this tab
    with ws_connect(gateway.ws_url, open_timeout=5) as ws:
        json.loads(ws.recv(timeout=5))  # challenge
        ws.send(json.dumps({
            "type": "req", "id": "c", "method": "connect",
            "params": {
                "minProtocol": 4, "maxProtocol": 4, "auth": {"token": TOKEN},
                "client": {"id": "pytest", "displayName": "Pytest Watcher", "version": "9.9.9",
                           "platform": "linux", "mode": "webchat", "instanceId": "pytest-1"},
            },
        }))  # fmt: skip
        while json.loads(ws.recv(timeout=5)).get("id") != "c":
            pass
        watcher = rows.filter(has_text="Pytest Watcher")
        expect(watcher).to_be_visible(timeout=2000)
        expect(watcher).to_contain_text("9.9.9")
        watched.shot("instances")

        def call(method: str, params: dict[str, object]) -> None:
            ws.send(json.dumps({"type": "req", "id": method, "method": method, "params": params}))
            while json.loads(ws.recv(timeout=5)).get("id") != method:
                pass

        call("system-event", {"text": "Backup finished: 3 files", "instanceId": "pytest-1"})
        expect(watcher).to_contain_text("Backup finished: 3 files", timeout=2000)
        # a new session, then a fresh health snapshot: the Overview follows the event
        call("chat.inject", {"sessionKey": "agent:main:notes", "message": "note"})
        call("health", {"probe": True})
    expect(watcher).to_have_attribute("data-reason", "disconnect", timeout=2000)
    page.get_by_test_id("nav-overview").click()
    expect(page.get_by_test_id("tile-sessions")).to_have_text("1", timeout=2000)
    health_ts = page.get_by_test_id("overview-health-ts")
    expect(health_ts).not_to_have_attribute("data-ts", checked or "", timeout=2000)
    assert len(watched.sockets) == 1  # all of it without a reload or a reconnect


# -- 5. streaming chat -------------------------------------------------------------------------


RECORD_RENDERS = """() => {
  window.__renders = [];
  const list = document.querySelector('[data-testid="chat-messages"]');
  new MutationObserver(() => {
    const bubble = list.querySelector('[data-testid="msg-assistant"][data-state="streaming"] .bubble-text');
    if (bubble) window.__renders.push(bubble.textContent);
  }).observe(list, {subtree: true, childList: true, characterData: true});
}"""


def test_5_streaming_chat(gateway: GatewayProc, watched: Watched) -> None:
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    page.evaluate(RECORD_RENDERS)
    send(watched, "hello [chunks=8 delay=150]")
    expect(page.get_by_test_id("msg-user").locator(".bubble-text")).to_have_text(
        "hello [chunks=8 delay=150]"
    )
    expect(page.get_by_test_id("chat-stop")).to_be_visible()
    bubble = page.locator('[data-testid="msg-assistant"][data-state="streaming"]')
    expect(bubble).to_be_visible()
    page.wait_for_timeout(450)
    watched.shot("chat-streaming")
    final = page.locator('[data-testid="msg-assistant"][data-state="final"]')
    expected = "".join(chunks(8))
    expect(final.locator(".bubble-text")).to_have_text(expected.strip(), use_inner_text=True)
    assert final.locator(".bubble-text").text_content() == expected
    renders = [r for r in page.evaluate("window.__renders") if r]
    growing = sorted(set(renders), key=len)
    assert len(growing) >= 3, renders
    assert all(expected.startswith(r) for r in growing), renders
    expect(page.get_by_test_id("chat-stop")).to_be_hidden()
    watched.shot("chat")
    page.reload()
    connected(watched)
    expect(page.get_by_test_id("msg-user").locator(".bubble-text")).to_have_text(
        "hello [chunks=8 delay=150]"
    )
    assert page.get_by_test_id("msg-assistant").locator(".bubble-text").text_content() == expected


# -- 6. abort -----------------------------------------------------------------------------------


def test_6_stop_keeps_the_partial_reply(gateway: GatewayProc, watched: Watched) -> None:
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    send(watched, "tell me a long story [chunks=80 delay=100]")
    text = page.locator('[data-testid="msg-assistant"] .bubble-text')
    expect(text).to_contain_text(chunks(5)[-1].strip())
    page.get_by_test_id("chat-stop").click()
    stopped = page.locator('[data-testid="msg-assistant"][data-state="stopped"]')
    expect(stopped).to_be_visible()
    expect(stopped.get_by_test_id("msg-stopped")).to_have_text("stopped")
    partial = text.text_content() or ""
    page.wait_for_timeout(600)  # six more chunks would have come by now
    assert text.text_content() == partial
    assert len(partial) < len("".join(chunks(40)))
    aborts = [json.loads(r) for r in watched.received if '"aborted"' in r and '"res"' in r]
    assert any(f.get("payload", {}).get("aborted") is True for f in aborts), aborts
    watched.shot("chat-stopped")
    page.reload()
    connected(watched)
    after = page.locator('[data-testid="msg-assistant"][data-state="stopped"] .bubble-text')
    expect(after).to_have_text(partial.strip())


# -- 7. restart ----------------------------------------------------------------------------------


def test_7_restart_reconnects_and_refreshes(gateway: GatewayProc, watched: Watched) -> None:
    """FAILURE-MODES 15, 16: the page reconnects with backoff and re-reads its state."""
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    send(watched, "before the restart [chunks=3 delay=20]")
    expect(page.locator('[data-testid="msg-assistant"][data-state="final"]')).to_be_visible()
    sent_before = len(watched.sent)
    gateway.restart()
    expect(page.get_by_test_id("connection-state")).to_contain_text("restarting", timeout=10_000)
    expect(page.get_by_test_id("banner")).to_contain_text("Gateway restarting")
    watched.shot("restarting")
    expect(page.get_by_test_id("connection-state")).to_have_text("Connected", timeout=20_000)
    expect(page.get_by_test_id("banner")).to_be_hidden()
    assert len(watched.sockets) >= 2
    after = wait_sent(watched, sent_before, "chat.history", "system-presence", "health")
    assert "chat.history" in after
    assert "system-presence" in after
    assert "health" in after
    assert watched.sent_methods().count("chat.send") == 1  # nothing re-sent by itself
    expect(page.get_by_test_id("msg-user")).to_have_count(1)
    expect(page.get_by_test_id("msg-assistant")).to_have_count(1)


# -- 8. seq gap -----------------------------------------------------------------------------------


def test_8_seq_gap_refreshes_state(gateway: GatewayProc, watched: Watched) -> None:
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    expect(page.get_by_test_id("chat-empty")).to_be_visible()
    page.wait_for_timeout(200)  # the connect-time refresh is over
    before = len(watched.sent)
    assert gateway.knob("drop-seq")["uiConnections"] == 1
    expect(page.get_by_test_id("resync-notice")).to_contain_text("Resynced")
    methods = wait_sent(watched, before, "health", "system-presence", "chat.history")
    assert {"health", "system-presence", "chat.history"} <= set(methods), methods
    assert any("event gap" in line for line in watched.console)
    # frames that are not protocol frames are logged and ignored; the page keeps working
    gateway.knob("garbage")
    send(watched, "still fine? [chunks=2 delay=10]")
    expect(page.locator('[data-testid="msg-assistant"][data-state="final"]')).to_be_visible()
    assert sum("ignoring" in line for line in watched.console) >= 3
    connected(watched)


# -- 9. foreign origins ---------------------------------------------------------------------------


@pytest.fixture
def foreign_site(gateway: GatewayProc) -> Iterator[str]:
    """A page on another loopback port that tries to use the gateway (and to frame it)."""
    page = f"""<!doctype html><title>evil</title><body><p id="ws">pending</p>
<iframe id="frame" src="{gateway.url}"></iframe>
<script>
const ws = new WebSocket("{gateway.ws_url}/");
ws.onopen = () => {{ document.getElementById("ws").textContent = "opened"; }};
ws.onerror = () => {{ document.getElementById("ws").textContent = "refused"; }};
</script></body>"""

    class Site(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_9_foreign_origin_is_refused(
    gateway: GatewayProc, foreign_site: str, context: BrowserContext
) -> None:
    """FAILURE-MODES 22: a page of another origin cannot open a socket (CSWSH)."""
    evil = watch_page(context.new_page())
    evil.page.goto(foreign_site)
    expect(evil.page.locator("#ws")).to_have_text("refused")
    assert "origin refused" in gateway.log_text()
    with pytest.raises(InvalidStatus) as raw:
        with ws_connect(gateway.ws_url, origin=Origin("https://evil.example"), open_timeout=5):
            pass
    assert raw.value.response.status_code == 403
    # the UI on its own origin still works
    mine = watch_page(context.new_page())
    sign_in(mine, gateway)
    connected(mine)


# -- 10. CSP and headers ----------------------------------------------------------------------------


def test_10_headers_and_no_framing(
    gateway: GatewayProc, foreign_site: str, context: BrowserContext, watched: Watched
) -> None:
    response = watched.page.goto(gateway.url)
    assert response is not None
    headers = response.all_headers()
    for name, value in HEADERS.items():
        assert headers.get(name) == value, name
    for asset in ("app.js", "main.js", "style.css", "lib/gateway.js"):
        answer = watched.page.request.get(gateway.url + asset)
        assert answer.headers["content-security-policy"] == SPEC_CSP, asset
    sign_in(watched, gateway)
    connected(watched)  # CSP3 'self' covers the same-origin ws: (no violation: see the fixture)
    evil = watch_page(context.new_page())
    evil.page.goto(foreign_site)
    expect(evil.page.locator("#ws")).to_have_text("refused")
    expect(evil.page.frame_locator("#frame").get_by_test_id("login")).to_have_count(0)
    blocked = [line for line in evil.console if "frame-ancestors 'none'" in line]
    assert blocked, evil.console  # the browser refused to frame the UI


# -- 11. tick watchdog -------------------------------------------------------------------------------


def test_11_silence_makes_the_page_reconnect(
    watched: Watched, tmp_path: Path, model_url: str
) -> None:
    """FAILURE-MODES 15: a half-open socket is detected by the tick watchdog."""
    gateway = start_gateway(tmp_path, model_url, tick_interval_ms=1000)
    try:
        page = watched.page
        sign_in(watched, gateway)
        connected(watched)
        page.wait_for_timeout(2500)  # while ticks come, a quiet page stays connected
        assert len(watched.sockets) == 1
        gateway.knob("pause-ticks")
        paused = time.monotonic()
        with page.expect_websocket(timeout=8000):
            pass
        waited = time.monotonic() - paused
        assert 1.5 <= waited <= 6, waited  # 2 x tickIntervalMs of silence, then a retry
        assert any("no frame for 2000 ms" in line for line in watched.console)
        gateway.knob("resume-ticks")
        connected(watched)
    finally:
        gateway.stop()


# -- 12. canvas -----------------------------------------------------------------------------------


def test_12_canvas_scaffold_live_reload_and_off(
    watched: Watched, tmp_path: Path, model_url: str
) -> None:
    gateway = start_gateway(tmp_path / "on", model_url, canvas=True)
    try:
        assert (
            gateway.canvas_url
            == f"http://127.0.0.1:{gateway.canvas_port}/__smart-agent-neo__/canvas/"
        )
        page = watched.page
        page.goto(gateway.canvas_url)
        expect(page.get_by_test_id("canvas-title")).to_have_text("Canvas ready")
        watched.shot("canvas")
        page.wait_for_function("window.smartAgentNeoLiveReload.readyState === 1")
        root = tmp_path / "on" / "state" / "workspace" / "canvas"
        (root / "index.html").write_text(
            "<html><body><h1 id='t'>edited by a test</h1></body></html>"
        )
        expect(page.locator("#t")).to_have_text("edited by a test", timeout=2000)
    finally:
        gateway.stop()
    off = start_gateway(
        tmp_path / "off", model_url, canvas=True, env={"SMART_AGENT_NEO_SKIP_CANVAS_HOST": "1"}
    )
    try:
        assert off.canvas_url is None
        assert off.canvas_port is not None
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", off.canvas_port)) != 0  # nothing listens
    finally:
        off.stop()


# -- every panel, at desktop and phone width ----------------------------------------------------


PANELS = [
    "overview",
    "chat",
    "sessions",
    "instances",
    "channels",
    "nodes",
    "logs",
    "config",
    "debug",
]
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def test_every_panel_renders_cleanly_at_desktop_and_phone_width(
    gateway: GatewayProc, context: BrowserContext, watched: Watched
) -> None:
    """Each panel shows its content (and its screenshot is kept) at 1280 px and 390 px,
    and nothing makes the page scroll sideways. Hostile chat text stays text."""
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    send(watched, "Good morning! What can you do for me today?")
    expect(page.locator('[data-testid="msg-assistant"][data-state="final"]')).to_be_visible()
    watched.shot("readme-chat")
    page.get_by_test_id("nav-overview").click()
    expect(page.get_by_test_id("tile-sessions")).to_have_text("1")
    watched.shot("readme-overview")
    open_chat(watched)
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)> שלום 👋🏽 مرحبا"
    send(watched, hostile + " [chunks=4 delay=10]")
    expect(page.locator('[data-testid="msg-assistant"][data-state="final"]')).to_have_count(2)
    user_text = page.get_by_test_id("msg-user").nth(1).locator(".bubble-text")
    expect(user_text).to_have_text(hostile + " [chunks=4 delay=10]")
    assert page.locator("[data-testid=chat-messages] img").count() == 0  # text, never markup
    long_line = "x" * 100_000
    send(watched, long_line)
    expect(page.get_by_test_id("msg-user")).to_have_count(3)
    assert page.evaluate(NO_OVERFLOW)
    checks = {
        "overview": "overview-version",
        "chat": "chat-messages",
        "sessions": "session-row",
        "instances": "instance-row",
        "channels": "channels-empty",
        "nodes": "pending-empty",
        "logs": "log-line",
        "config": "config-valid",
        "debug": "debug-events",
    }
    for width, height, suffix in ((1280, 860, ""), (390, 844, "-phone")):
        page.set_viewport_size({"width": width, "height": height})
        for name in PANELS:
            page.get_by_test_id(f"nav-{name}").click()
            expect(page.get_by_test_id(checks[name]).first).to_be_visible()
            assert page.evaluate(NO_OVERFLOW), f"{name} scrolls sideways at {width}px"
            watched.shot(f"panel-{name}{suffix}")


# -- nodes: a pairing request approved from the page --------------------------------------------


def test_a_node_pairing_request_is_approved_from_the_page(
    gateway: GatewayProc, watched: Watched
) -> None:
    page = watched.page
    sign_in(watched, gateway)
    connected(watched)
    page.get_by_test_id("nav-nodes").click()
    expect(page.get_by_test_id("pending-empty")).to_be_visible()
    with Operator(gateway.ws_url) as operator:
        res = operator.call(
            "node.pair.request",
            {"nodeId": "kitchen-tablet", "displayName": "Kitchen tablet", "platform": "android",
             "caps": ["canvas", "camera"], "commands": ["canvas.present"]},
        )  # fmt: skip
        assert res["ok"] is True, res
        request = page.get_by_test_id("pending-request").filter(has_text="Kitchen tablet")
        expect(request).to_be_visible(timeout=2000)  # live, from node.pair.requested
        expect(page.get_by_test_id("nav-count-nodes")).to_have_text("1")
        watched.shot("nodes-pending")
        request.get_by_test_id("approve").click()
        expect(request).to_have_count(0)
        row = page.get_by_test_id("node-row").filter(has_text="Kitchen tablet")
        expect(row).to_contain_text("paired")
        expect(page.get_by_test_id("nav-count-nodes")).to_be_hidden()
        listed = operator.call("node.pair.list", {})
        assert [n["nodeId"] for n in listed["payload"]["paired"]] == ["kitchen-tablet"]
        watched.shot("nodes")


# -- channels: state, stop / start / restart and a probe, against a Telegram double --------------


def test_channels_panel_drives_a_telegram_account(
    telegram: TelegramDouble, watched: Watched, tmp_path: Path, model_url: str
) -> None:
    from ..channelkit import BOT_TOKEN

    channel = (
        f'channels: {{ telegram: {{ botToken: "{BOT_TOKEN}", apiBaseUrl: "{telegram.base_url}",'
        ' dmPolicy: "open", allowFrom: ["*"] } },'
    )
    gateway = start_gateway(tmp_path, model_url, extra_config=channel)
    try:
        page = watched.page
        sign_in(watched, gateway)
        connected(watched)
        page.get_by_test_id("nav-channels").click()
        row = page.get_by_test_id("channel-row").filter(has_text="default")
        state = row.get_by_test_id("channel-state")
        expect(state).to_have_text("running", timeout=10_000)
        row.get_by_test_id("channel-stop").click()
        expect(page.get_by_test_id("channels-note")).to_have_text("Stopped telegram/default.")
        expect(state).to_have_text("stopped")
        expect(row).to_contain_text("manual")
        row.get_by_test_id("channel-start").click()
        expect(state).to_have_text("running", timeout=10_000)
        row.get_by_test_id("channel-restart").click()
        expect(page.get_by_test_id("channels-note")).to_have_text("Restarted telegram/default.")
        page.get_by_test_id("channels-probe").click()
        expect(row.get_by_test_id("channel-probe")).to_contain_text("Probe ok: @neo_kitchen_bot")
        watched.shot("channels")
    finally:
        gateway.stop()


# -- a send whose answer was lost is sent again with the same key ---------------------------------


def test_a_send_whose_answer_was_lost_is_retried_with_the_same_key(
    gateway: GatewayProc, watched: Watched
) -> None:
    """The chat.send ``res`` never arrives (the socket drops first): after the reconnect the
    page sends the same idempotencyKey again and the gateway answers for the one run."""
    page = watched.page
    sockets = {"n": 0}

    def route(ws: Any) -> None:
        sockets["n"] += 1
        server = ws.connect_to_server()
        first = sockets["n"] == 1

        def from_page(message: str | bytes) -> None:
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if first and '"type":"res"' in str(message) and '"status":"started"' in str(message):
                ws.close(code=4001, reason="lost")  # the answer is lost with the socket
                return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    page.route_web_socket(re.compile(r"^ws://"), route)
    sign_in(watched, gateway)
    connected(watched)
    open_chat(watched)
    send(watched, "are you there? [chunks=6 delay=40]")
    expect(page.get_by_test_id("connection-state")).to_have_text("Connected", timeout=10_000)
    final = page.locator('[data-testid="msg-assistant"][data-state="final"]')
    expect(final).to_have_count(1, timeout=10_000)
    keys = [f["params"]["idempotencyKey"] for f in watched.sent if f.get("method") == "chat.send"]
    assert len(keys) == 2, keys
    assert keys[0] == keys[1]
    expect(page.get_by_test_id("msg-user")).to_have_count(1)
    assert sockets["n"] >= 2


# -- config: the read-only view, secrets hidden --------------------------------------------------


def test_the_config_panel_shows_the_file_with_secrets_hidden(
    watched: Watched, tmp_path: Path, model_url: str
) -> None:
    """CONTROL-UI.md 4: the Config panel is config.get's read-only view -- the file as
    written and the config in force -- and no secret reaches the page."""
    secret = "123456:browser-secret-xyz"
    extra = f'channels: {{ telegram: {{ enabled: false, botToken: "{secret}" }} }},'
    gateway = start_gateway(tmp_path, model_url, extra_config=extra)
    try:
        page = watched.page
        sign_in(watched, gateway)
        connected(watched)
        since = len(watched.sent)
        page.get_by_test_id("nav-config").click()
        assert "config.get" in wait_sent(watched, since, "config.get")
        raw = page.get_by_test_id("config-raw-text")
        expect(raw).to_contain_text("botToken")
        expect(raw).to_contain_text("__REDACTED__")
        expect(raw).to_contain_text('mode: "local"')
        effective = page.get_by_test_id("config-effective")
        effective.locator("summary").click()
        expect(page.get_by_test_id("config-effective-text")).to_contain_text('"port"')
        body = page.locator("body").inner_text()
        assert secret not in body
        assert TOKEN not in body
        assert not any(secret in frame for frame in watched.received)
        watched.shot("config")
    finally:
        gateway.stop()
