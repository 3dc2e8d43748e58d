"""The Control UI over HTTP and the origin gate over real sockets (CONTROL-UI.md 1-3).

The browser scenarios are in ``tests/browser``; here plain HTTP and WebSocket clients check
what every response carries, how paths map to files, and which origins may open a socket.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from websockets.exceptions import InvalidStatus

from gateway.app import Running
from gateway.config.load import Loaded
from gateway.config.model import Config, ControlUi, Gateway
from gateway.config.paths import Paths
from gateway.config.settings import Overrides, resolve
from gateway.controlui import assets
from gateway.controlui.routing import normalize_base, route
from gateway.errors import StartupError

from .conftest import (
    StartGateway,
    connect_frame,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
)

STATIC = Path(assets.packaged_root())  # type: ignore[arg-type]
# CONTROL-UI.md 1, verbatim: the one fixed string
SPEC_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY = {
    "content-security-policy": SPEC_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-cache",
}


def base_url(running: Running) -> str:
    return f"http://{running.host}:{running.port}"


def with_ui(**fields: Any) -> Config:
    return Config(gateway=Gateway(control_ui=ControlUi(**fields)))


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, name


# -- the files themselves ------------------------------------------------------------------


def test_the_app_is_small_static_and_has_no_inline_code() -> None:
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total < 150 * 1024, f"the UI is {total} bytes; the budget is 150 KB"
    assert [p.name for p in files if p.suffix == ".css"] == ["style.css"]
    index = (STATIC / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", index) == ['<script type="module" src="__BASE__app.js">']
    assert index.count("<script") == 1
    for path in files:
        if path.suffix not in (".js", ".html"):
            continue
        text = path.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert banned not in text, f"{path.name} uses {banned}"
        assert not re.search(r"new Function\s*\(", text), path.name
        assert not re.search(r"\sstyle=", text), f"{path.name} has an inline style"
        assert not re.search(r"<[^>]+\son[a-z]+=", text), f"{path.name} has an inline handler"
        # (the SVG namespace is a name, not an address)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name


def test_routing_rules() -> None:
    files = frozenset({"index.html", "app.js", "lib/gateway.js"})

    def kind(method: str, path: str, query: bytes = b"", base: str = "") -> str:
        return route(method, path, query, base, files).kind

    assert normalize_base("/") == ""
    assert normalize_base("dash/") == "/dash"
    assert kind("GET", "/") == "index"
    assert kind("GET", "/app.js") == "file"
    assert kind("GET", "/lib/gateway.js") == "file"
    assert kind("GET", "/chat/deep/link") == "index"
    assert kind("GET", "/api/anything") == "api-not-found"
    assert kind("GET", "/../etc/passwd") == "not-found"
    assert kind("GET", "/lib/../app.js") == "not-found"
    assert kind("GET", "/a\x00b") == "not-found"
    assert kind("GET", "/.env") == "not-found"
    assert kind("POST", "/") == "method"
    assert kind("GET", "/", b"token=abc") == "token-in-query"
    assert kind("GET", "/", b"x=1&token") == "token-in-query"
    assert kind("GET", "/", b"tokens=1") == "index"
    assert kind("GET", "/healthz") == "not-ui"
    assert kind("POST", "/v1/chat/completions") == "not-ui"
    assert kind("GET", "/dash", b"a=1", "/dash") == "redirect"
    assert route("GET", "/dash", b"a=1", "/dash", files).target == "/dash/?a=1"
    assert kind("GET", "/dash", b"token=abc", "/dash") == "token-in-query"  # not into a 302
    assert kind("GET", "/dash/app.js", base="/dash") == "file"
    assert kind("GET", "/", base="/dash") == "not-ui"
    assert kind("GET", "/v1/models", base="/dash") == "not-ui"


# -- served by a gateway -------------------------------------------------------------------


async def test_index_assets_and_headers(gateway: Running) -> None:
    """FAILURE-MODES 32: every UI response says no-cache and carries an ETag, so a tab
    revalidates and never runs a stale bundle after an upgrade."""
    async with httpx.AsyncClient(base_url=base_url(gateway)) as http:
        with trio.fail_after(10):
            index = await http.get("/")
            deep = await http.get("/some/deep/link")
            script = await http.get("/app.js")
            style = await http.get("/style.css")
            head = await http.head("/")
            again = await http.get("/", headers={"if-none-match": index.headers["etag"]})
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert_security_headers(index)
    assert '<meta name="sa-base-path" content="/">' in index.text
    assert 'src="/app.js"' in index.text
    assert "__BASE__" not in index.text
    assert deep.text == index.text
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.content == (STATIC / "app.js").read_bytes()
    assert_security_headers(script)
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == index.headers["content-length"]
    assert again.status_code == 304
    assert again.content == b""


async def test_refusals(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=base_url(gateway)) as http:
        with trio.fail_after(10):
            token = await http.get("/?token=secret-value")
            post = await http.post("/", content=b"x")
            api = await http.get("/api/nothing")
            dots = await http.get("/%2e%2e/%2e%2e/etc/passwd")
    assert token.status_code == 400
    assert token.text == "Token must be passed as #token=… (query parameters are not allowed)."
    assert_security_headers(token)
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert api.status_code == 404
    assert api.json() == {"error": "Not found"}
    assert dots.status_code == 404
    assert_security_headers(dots)


async def test_base_path(start_gateway: StartGateway, tmp_path: Path) -> None:
    running = await start_gateway(make_settings(tmp_path, config=with_ui(base_path="/dash/")))
    async with httpx.AsyncClient(base_url=base_url(running)) as http:
        with trio.fail_after(10):
            bare = await http.get("/dash?x=1")
            index = await http.get("/dash/")
            script = await http.get("/dash/app.js")
            root = await http.get("/")
    assert bare.status_code == 302
    assert bare.headers["location"] == "/dash/?x=1"
    assert '<meta name="sa-base-path" content="/dash">' in index.text
    assert 'src="/dash/app.js"' in index.text
    assert script.status_code == 200
    assert root.status_code == 404


async def test_custom_root_and_missing_assets(start_gateway: StartGateway, tmp_path: Path) -> None:
    root = tmp_path / "ui"
    root.mkdir()
    (root / "index.html").write_text("<p>mine __BASE__</p>")
    (root / "secret").mkdir()
    (root / ".hidden").write_text("no")
    running = await start_gateway(make_settings(tmp_path, config=with_ui(root=str(root))))
    async with httpx.AsyncClient(base_url=base_url(running)) as http:
        with trio.fail_after(10):
            index = await http.get("/")
            hidden = await http.get("/.hidden")
    assert index.text == "<p>mine /</p>"
    assert hidden.status_code == 404

    missing = await start_gateway(
        make_settings(tmp_path / "b", config=with_ui(root=str(tmp_path / "nowhere")))
    )
    async with httpx.AsyncClient(base_url=base_url(missing)) as http:
        with trio.fail_after(10):
            response = await http.get("/")
            probe = await http.get("/healthz")
    assert response.status_code == 503
    assert response.text.startswith("Control UI assets not found.")
    assert "gateway.controlUi.root" in response.text
    assert probe.status_code == 200


async def test_disabled_ui_is_not_served(start_gateway: StartGateway, tmp_path: Path) -> None:
    running = await start_gateway(make_settings(tmp_path, config=with_ui(enabled=False)))
    async with httpx.AsyncClient(base_url=base_url(running)) as http:
        with trio.fail_after(10):
            response = await http.get("/app.js")
    assert response.status_code == 404


# -- the origin gate ------------------------------------------------------------------------


def _upgrade_status(
    url: str, origin: str | None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    try:
        with open_raw(url, origin=origin, additional_headers=headers):
            return 101, b""
    except InvalidStatus as exc:
        return int(exc.response.status_code), bytes(exc.response.body or b"")


async def test_foreign_origins_get_403_before_the_upgrade(gateway: Running) -> None:
    """FAILURE-MODES 22: the origin allowlist is enforced on the WebSocket upgrade."""
    url, port = gateway.url, gateway.port
    cases: list[tuple[str | None, dict[str, str] | None, int]] = [
        (None, None, 101),  # not a browser (the CLI, nodes)
        (f"http://127.0.0.1:{port}", None, 101),  # the UI itself
        (f"http://localhost:{port}", None, 101),
        ("https://evil.example", None, 403),
        ("http://127.0.0.1:1", None, 403),  # another local page
        ("null", None, 403),
        (f"http://127.0.0.1:{port}", {"X-Forwarded-Host": "x"}, 403),
    ]
    for origin, headers, expected in cases:
        status, body = await in_thread(_upgrade_status, url, origin, headers)
        assert status == expected, (origin, headers)
        assert body.strip() == (b"origin not allowed" if expected == 403 else b"")


async def test_allowed_origins_and_the_check_again_in_connect(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway(
        make_settings(tmp_path, config=with_ui(allowed_origins=["https://ui.example.com"]))
    )
    rt = running.runtime

    def allowed_then_refused() -> tuple[dict[str, Any], dict[str, Any], Any]:
        with open_raw(running.url, origin="https://ui.example.com") as ws:
            hello = handshake(ws)
        with open_raw(running.url, origin="https://ui.example.com") as ws:
            recv_json(ws)  # challenge
            # the allowlist changes (hot reload) between the upgrade and connect
            trio.from_thread.run_sync(
                rt.apply_settings, attrs.evolve(rt.settings, config=with_ui(allowed_origins=[]))
            )
            ws.send(json.dumps(connect_frame()))
            frame = recv_json(ws)
            with pytest.raises(Exception):  # noqa: B017, PT011  (closed by the server)
                recv_json(ws)
            return hello, frame, ws.close_code

    hello, refused, code = await in_thread(allowed_then_refused)
    assert hello["ok"] is True
    assert refused["ok"] is False
    assert refused["error"]["code"] == "INVALID_REQUEST"
    assert refused["error"]["message"].startswith("origin not allowed (open the Control UI")
    assert refused["error"]["details"] == {
        "code": "CONTROL_UI_ORIGIN_NOT_ALLOWED",
        "reason": "origin not allowed",
    }
    assert code == 1008


def test_non_loopback_bind_needs_allowed_origins(tmp_path: Path) -> None:
    """FAILURE-MODES 8, 20: lan without allowedOrigins is refused at start, naming the key."""
    paths = Paths(None, tmp_path, tmp_path / "c.json")
    lan = Overrides(bind="lan", token="t" * 24)

    def settings(config: Config) -> object:
        return resolve(Loaded(config, paths.config_path, True), paths, lan, {}, lambda: "g")

    with pytest.raises(StartupError) as refused:
        settings(Config())
    assert str(refused.value).startswith(
        "non-loopback Control UI requires gateway.controlUi.allowedOrigins (set explicit origins)"
    )
    settings(with_ui(allowed_origins=["https://ui.example.com"]))
    settings(with_ui(enabled=False))
    settings(with_ui(dangerously_allow_host_header_origin_fallback=True))


async def test_browser_auth_failures_are_limited_per_origin_even_on_loopback(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """A hostile page runs on the user's own machine: its guesses get no loopback exemption,
    and its lockout is its own (the CLI on the same address is not locked out).
    FAILURE-MODES 19: the loopback exemption cannot be borrowed by a browser page."""
    config = Config(
        gateway=Gateway(
            control_ui=ControlUi(allowed_origins=["https://ui.example.com"]),
            auth=attrs.evolve(
                Gateway().auth, rate_limit=attrs.evolve(Gateway().auth.rate_limit, max_attempts=2)
            ),
        )
    )
    running = await start_gateway(make_settings(tmp_path, config=config))

    def codes(origin: str | None, token: str, times: int) -> list[str]:
        found = []
        for _ in range(times):
            with open_raw(running.url, origin=origin) as ws:
                res = handshake(ws, token=token)
                found.append(res["error"]["details"]["code"] if not res["ok"] else "ok")
        return found

    browser = await in_thread(codes, "https://ui.example.com", "wrong", 3)
    cli = await in_thread(codes, None, "wrong", 3)
    assert browser == ["AUTH_TOKEN_MISMATCH", "AUTH_TOKEN_MISMATCH", "AUTH_RATE_LIMITED"]
    assert cli == ["AUTH_TOKEN_MISMATCH"] * 3  # loopback CLI: exempt, and not the page's bucket
