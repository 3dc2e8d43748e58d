"""The canvas host (CONTROL-UI.md 7): its own port, traversal-safe files, the scaffold, the
live-reload script and socket, and every way it is turned off. Pure parts first."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from websockets.sync.client import connect as ws_connect

from gateway.canvas import files, snippet, watch
from gateway.canvas.host import CanvasHost, canvas_root
from gateway.config.model import CanvasHost as CanvasConfig
from gateway.config.model import Config

from .conftest import StartGateway, in_thread, make_settings

PREFIX = files.PREFIX


def test_snippet_goes_before_the_last_body_end() -> None:
    html = "<html><body><p>a</p><!-- </BODY> in a comment --></body></html>"
    out = snippet.inject(html, True)
    assert out.endswith(snippet.script(True) + "</body></html>")
    assert out.count("<script>") == 1
    assert "live();" in out
    assert snippet.inject("<p>no body</p>", False) == "<p>no body</p>" + snippet.script(False)
    assert "live();" not in snippet.script(False)
    assert "smartAgentNeoSendUserAction" in snippet.script(False)  # the A2UI bridge either way


def test_paths_never_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "canvas"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "dirlink")
    assert files.resolve(root, "sub/a.txt") == (root / "sub" / "a.txt").resolve()
    assert files.resolve(root, "./sub//a.txt") == (root / "sub" / "a.txt").resolve()
    for bad in (
        "../secret.txt",
        "sub/../../secret.txt",
        "link.txt",
        "dirlink/secret.txt",
        "a\x00b",
    ):
        assert files.resolve(root, bad) is None, bad


def test_responses(tmp_path: Path) -> None:
    root = tmp_path / "canvas"
    files.ensure_root(root)
    (root / "empty").mkdir()
    (root / "app.js").write_text("x()")

    def status(method: str, path: str, live: bool = True) -> files.Response:
        return files.respond(method, path, root, live)

    index = status("GET", f"{PREFIX}/")
    assert index.status == 200
    assert index.content_type == "text/html; charset=utf-8"
    assert b"Canvas ready" in index.body
    assert snippet.script(True).encode() in index.body
    assert status("GET", f"{PREFIX}/index.html").body == index.body
    assert status("GET", f"{PREFIX}/app.js").content_type.startswith("text/javascript")
    assert status("GET", f"{PREFIX}/%2e%2e/%2e%2e/etc/passwd").status == 404
    missing = status("GET", f"{PREFIX}/empty/")
    assert missing.status == 404
    assert f"Missing file. Create {root / 'empty' / 'index.html'}".encode() in missing.body
    assert status("GET", f"{PREFIX}/nope.png").body == b"not found"
    gone = status("GET", f"{PREFIX}/no-such-folder/")  # a folder URL: which file to create
    assert gone.status == 404
    assert gone.content_type == "text/html; charset=utf-8"
    assert b"Missing file. Create " in gone.body
    (root / "index.html").unlink()
    bare = status("GET", f"{PREFIX}/")
    assert bare.status == 404
    assert f"Missing file. Create {root / 'index.html'}".encode() in bare.body
    assert status("POST", f"{PREFIX}/").status == 405
    assert status("GET", PREFIX).status == 302
    assert status("GET", snippet.WS_PATH).status == 426
    assert status("GET", snippet.WS_PATH, live=False).status == 404
    assert (status("GET", "/__smart-agent-neo__/a2ui/").status, status("GET", "/x").status) == (
        503,
        404,
    )


def test_watch_sees_edits_and_skips_dotfiles(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("x")
    (tmp_path / ".swp").write_text("x")
    (tmp_path / "index.html").write_text("one")
    before = watch.snapshot(tmp_path)
    assert list(before) == ["index.html"]
    (tmp_path / "index.html").write_text("two two")
    assert watch.snapshot(tmp_path) != before
    with pytest.raises(FileNotFoundError):
        watch.snapshot(tmp_path / "gone")


def test_a_non_loopback_canvas_wants_the_gateway_secret(tmp_path: Path) -> None:
    settings = attrs.evolve(make_settings(tmp_path), host="10.0.0.5")
    host = CanvasHost(settings, tmp_path, True)
    assert not host.authorized({"headers": []})
    assert not host.authorized({"headers": [(b"authorization", b"Bearer wrong")]})
    assert host.authorized({"headers": [(b"authorization", b"Bearer test-token-0123456789")]})
    assert CanvasHost(make_settings(tmp_path), tmp_path, True).authorized({"headers": []})


# -- a gateway with its canvas host ---------------------------------------------------------


async def test_canvas_serves_the_scaffold_and_reloads_open_pages(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway(make_settings(tmp_path, canvas=True))
    port = running.canvas_port
    assert port is not None
    assert port != running.port
    root = canvas_root(running.runtime.settings)
    assert root == tmp_path / "workspace" / "canvas"
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            page = await http.get(f"{base}{PREFIX}/")
            other = await http.get(f"{base}/")
    assert page.status_code == 200
    assert "Canvas ready" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert other.status_code == 404
    assert (root / "index.html").is_file()

    got: list[str] = []

    def listen() -> None:
        with ws_connect(f"ws://127.0.0.1:{port}{snippet.WS_PATH}", open_timeout=5) as ws:
            trio.from_thread.run_sync(listening.set)
            got.append(str(ws.recv(timeout=5)))

    listening = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_thread, listen)
        await listening.wait()
        (root / "index.html").write_text("<body>edited</body>")
    assert got == ["reload"]


async def test_canvas_turned_off(start_gateway: StartGateway, tmp_path: Path) -> None:
    off = Config(canvas_host=CanvasConfig(enabled=False))
    running = await start_gateway(make_settings(tmp_path, config=off, canvas=True))
    assert running.canvas_port is None
    skipped = await start_gateway(make_settings(tmp_path / "b"))  # SKIP_CANVAS_HOST=1
    assert skipped.canvas_port is None


async def test_busy_canvas_port_is_a_warning_not_a_failure(
    start_gateway: StartGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = Config(canvas_host=CanvasConfig(port=busy))
        running = await start_gateway(make_settings(tmp_path, config=config, canvas=True))
        assert running.canvas_port is None
        async with httpx.AsyncClient() as http:
            with trio.fail_after(10):
                assert (
                    await http.get(f"http://127.0.0.1:{running.port}/healthz")
                ).status_code == 200
    assert f"canvas host not started on 127.0.0.1:{busy}: the port is in use" in caplog.text
