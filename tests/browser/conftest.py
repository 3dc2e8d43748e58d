"""The browser test harness (CONTROL-UI.md 13): Debian's Chromium driven by Playwright, a
gateway subprocess with a deterministic streaming model, and what a person would see.

* **The browser**: ``chromium`` from the system (``/usr/bin/chromium``; ``.ci/run`` installs
  it), launched by Playwright through ``executable_path`` -- Playwright's own browser
  download is never used. No browser is a failure, not a skip.
* **The gateway**: the real CLI in its own process (``tests/browser/gatewayproc.py`` adds
  test-only knobs), on a free loopback port, with a temporary state dir, a known token and
  the streaming test model (``mockmodel.py``, in a thread of this process).
* **Every page** records its console and WebSocket frames; a test fails if the page logged a
  CSP violation or threw an uncaught error.
* **Screenshots** of what the tests look at go to ``test-artifacts/browser/`` (or
  ``$SMART_AGENT_NEO_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    WebSocket,
    sync_playwright,
)

from bench.procs import free_port  # below the ephemeral range: no race with connect()

from .mockmodel import Handler

REPO = Path(__file__).resolve().parents[2]
TOKEN = "browser-test-token-4f9d2c"
ARTIFACTS = (
    Path(os.environ.get("SMART_AGENT_NEO_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
)
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",  # nothing but loopback is reachable here
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
BANNER = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)")
CANVAS = re.compile(r"Canvas: (http://\S+)")


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed (apt-get install chromium); the browser tests "
            "need it and are never skipped",
            pytrace=False,
        )
    return found


# -- the model ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="mock model", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- the gateway ---------------------------------------------------------------------------------


@attrs.define
class GatewayProc:
    process: subprocess.Popen[bytes]
    port: int
    state: Path
    output_path: Path
    canvas_url: str | None = None  # what the banner printed (None: no canvas host)
    canvas_port: int | None = None  # the port it was told to use

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def knob(self, name: str) -> dict[str, Any]:
        response = httpx.post(f"http://127.0.0.1:{self.port}/__test__/{name}", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.state / "logs").glob("*.log"))

    def restart(self) -> None:
        """SIGUSR1: the in-process restart (same PID, same port)."""
        self.process.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_gateway(
    tmp: Path,
    model_url: str,
    *,
    tick_interval_ms: int = 30_000,
    env: dict[str, str] | None = None,
    canvas: bool = False,
    extra_config: str = "",
) -> GatewayProc:
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "smart-agent-neo.json").write_text(
        f"""{{
  {extra_config}
  gateway: {{ mode: "local", ws: {{ tickIntervalMs: {tick_interval_ms} }} }},
  models: {{ providers: {{ mock: {{ baseUrl: "{model_url}", api: "openai-completions",
             models: [{{ id: "stream" }}] }} }} }},
  agents: {{ defaults: {{ model: {{ primary: "mock/stream" }}, heartbeat: {{ every: "0m" }} }} }},
}}"""
    )
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_AGENT_NEO_")}
    full_env.update(
        HOME=str(tmp),
        SMART_AGENT_NEO_STATE_DIR=str(state),
        SMART_AGENT_NEO_GATEWAY_TOKEN=TOKEN,
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    canvas_port = free_port() if canvas else None
    if canvas_port is not None:
        full_env["SMART_AGENT_NEO_CANVAS_HOST_PORT"] = str(canvas_port)
    else:
        full_env["SMART_AGENT_NEO_SKIP_CANVAS_HOST"] = "1"
    full_env.update(env or {})
    output_path = tmp / "gateway.out"
    with output_path.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.browser.gatewayproc",
                "gateway",
                "--port",
                str(port),
                "--log-level",
                "debug",
            ],
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc = GatewayProc(process, port, state, output_path, canvas_port=canvas_port)
    deadline = time.monotonic() + 30
    while "Press Ctrl-C" not in proc.output():
        if process.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"the gateway did not start:\n{proc.output()}", pytrace=False)
        time.sleep(0.05)
    text = proc.output()
    match = BANNER.search(text)
    assert match, text
    assert int(match.group(1)) == port, text
    canvas_match = CANVAS.search(text)
    proc.canvas_url = canvas_match.group(1) if canvas_match else None
    return proc


@pytest.fixture
def gateway(tmp_path: Path, model_url: str) -> Iterator[GatewayProc]:
    proc = start_gateway(tmp_path, model_url)
    try:
        yield proc
    finally:
        proc.stop()


# -- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    try:
        yield browser
    finally:
        browser.close()


@attrs.define
class Watched:
    """What a page did: console lines, page errors, WebSocket opens and frames."""

    page: Page
    console: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)
    sockets: list[WebSocket] = attrs.field(factory=list)
    sent: list[dict[str, Any]] = attrs.field(factory=list)  # parsed frames the page sent
    received: list[str] = attrs.field(factory=list)

    def sent_methods(self) -> list[str]:
        return [str(f.get("method")) for f in self.sent if f.get("type") == "req"]

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def watch_page(page: Page) -> Watched:
    import json

    watched = Watched(page)
    page.on("console", lambda m: watched.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: watched.errors.append(str(e)))

    def on_socket(ws: WebSocket) -> None:
        watched.sockets.append(ws)

        def sent(payload: str | bytes) -> None:
            try:
                frame = json.loads(payload)
            except ValueError:
                return
            if isinstance(frame, dict):
                watched.sent.append(frame)

        ws.on("framesent", sent)
        ws.on("framereceived", lambda p: watched.received.append(str(p)))

    page.on("websocket", on_socket)
    return watched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[Watched]:
    watched = watch_page(context.new_page())
    yield watched
    assert not watched.csp_violations(), watched.csp_violations()
    assert not watched.errors, watched.errors


def sign_in(w: Watched, gateway: GatewayProc, token: str = TOKEN) -> None:
    w.page.goto(gateway.url)
    w.page.get_by_test_id("token-input").fill(token)
    w.page.get_by_test_id("connect-button").click()


class Operator:
    """A plain WebSocket client of the gateway (the ``websockets`` sync client), for tests
    that act on the gateway beside the page."""

    def __init__(self, url: str, display_name: str = "Pytest Operator", mode: str = "cli") -> None:
        import json

        from websockets.sync.client import connect

        self._json = json
        self._connection = connect(url, open_timeout=5)
        self.ws = self._connection.__enter__()
        self.ws.recv(timeout=5)  # the challenge
        self.call(
            "connect",
            {
                "minProtocol": 4,
                "maxProtocol": 4,
                "auth": {"token": TOKEN},
                "client": {"id": "pytest", "displayName": display_name, "version": "9.9.9",
                           "platform": "linux", "mode": mode, "instanceId": display_name},
            },
        )  # fmt: skip

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The ``res`` frame of one request (events in between are skipped)."""
        self.ws.send(
            self._json.dumps({"type": "req", "id": method, "method": method, "params": params})
        )
        while True:
            frame: dict[str, Any] = self._json.loads(self.ws.recv(timeout=10))
            if frame.get("type") == "res" and frame.get("id") == method:
                return frame

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(None, None, None)


@attrs.define
class TelegramDouble:
    """``FakeTelegram`` (tests/faketelegram.py) on loopback, in a trio thread of its own."""

    fake: Any
    token: Any  # the trio token of its thread
    stop: Any  # a trio.Event set (from its thread) to end it
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return str(self.fake.base_url)


@pytest.fixture
def telegram() -> Iterator[TelegramDouble]:
    import trio

    from ..channelkit import BOT_TOKEN
    from ..faketelegram import start_fake_telegram

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            fake = await start_fake_telegram(nursery)
            fake.add_bot(BOT_TOKEN, username="neo_kitchen_bot")
            box.update(fake=fake, token=trio.lowlevel.current_trio_token(), stop=trio.Event())
            ready.set()
            await box["stop"].wait()
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(main,), name="fake telegram", daemon=True)
    thread.start()
    assert ready.wait(10), "the Telegram double did not start"
    double = TelegramDouble(box["fake"], box["token"], box["stop"], thread)
    try:
        yield double
    finally:
        trio.from_thread.run_sync(double.stop.set, trio_token=double.token)
        thread.join(timeout=10)
