"""Hostile input against a real gateway (issue 16): each finding of the attack on the
gateway has a regression test here, run over real sockets. No client, authenticated or not,
may crash the process, block other clients or poison what they read."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from websockets.exceptions import ConnectionClosed

from gateway.app import Running
from gateway.config.load import parse
from gateway.config.settings import Settings

from .conftest import (
    TOKEN,
    StartGateway,
    connect_frame,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
    request,
)


def _connect_text(display_name_json: str, mode: str = "node", role: str = "node") -> str:
    """A connect frame as text, with a display name spliced in as raw JSON (so it can hold
    escapes no JSON library would write, such as a lone surrogate)."""
    frame = connect_frame(role=role)
    frame["params"]["client"]["mode"] = mode
    frame["params"]["client"]["displayName"] = "@@NAME@@"
    return json.dumps(frame).replace('"@@NAME@@"', display_name_json)


async def test_a_poisoned_display_name_never_affects_another_client(gateway: Running) -> None:
    """Issue 16, high 1: a lone surrogate in ``client.displayName`` (role node) was accepted
    into presence; then every new connect dropped and ``system-presence`` killed the callers
    for 5 minutes. Now it is refused at the door, and what else a client can put into shared
    state (control characters, a huge name) is cleaned there: others never notice."""

    def poison() -> tuple[int | None, str | None]:
        with open_raw(gateway.url) as ws:
            recv_json(ws)  # challenge
            ws.send(_connect_text('"\\ud800"'))
            try:
                while True:
                    ws.recv(timeout=5)
            except ConnectionClosed as closed:
                rcvd = closed.rcvd
                return (rcvd.code, rcvd.reason) if rcvd else (None, None)

    code, reason = await in_thread(poison)
    assert code == 1008
    assert reason is not None
    assert reason.startswith("invalid request frame: a string holds a lone UTF-16 surrogate")

    def nasty_but_valid() -> None:
        # valid JSON, valid Unicode, hostile to readers: an ESC sequence and 60 KB of name
        name = "\x1b[2J\x1b]0;pwned\x07evil" + "x" * 60_000
        with open_raw(gateway.url, max_size=None) as ws:
            recv_json(ws)
            frame = connect_frame(role="node")
            frame["params"]["client"].update(mode="node", displayName=name)
            ws.send(json.dumps(frame))
            hello = recv_json(ws)
            assert hello["ok"] is True, hello

    await in_thread(nasty_but_valid)

    def another_client() -> list[dict[str, Any]]:
        with open_raw(gateway.url) as ws:
            assert handshake(ws)["ok"] is True
            res = request(ws, "system-presence")
            assert res["ok"] is True
            listing: list[dict[str, Any]] = res["payload"]
            return listing

    listing = await in_thread(another_client)
    hosts = [row.get("host", "") for row in listing]
    evil = [h for h in hosts if "evil" in h]
    assert len(evil) == 1
    assert "\x1b" not in evil[0]
    assert "\x07" not in evil[0]
    assert len(evil[0]) <= 256
    assert not any("\ud800" in h for h in hosts)


async def test_deep_json_before_login_is_a_close_frame_not_a_traceback(
    gateway: Running,
) -> None:
    """Issue 16, medium 4: 2 KB of nesting before login raised RecursionError through the
    fallback parser (a traceback, and no close frame)."""

    def deep() -> tuple[int, str]:
        with open_raw(gateway.url) as ws:
            recv_json(ws)
            ws.send("[" * 1100 + "]" * 1100)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        rcvd = closed.value.rcvd
        assert rcvd is not None
        return rcvd.code, rcvd.reason

    assert await in_thread(deep) == (1008, "invalid request frame: nested deeper than 128 levels")


async def test_invalid_utf8_and_protocol_violations_get_their_close_codes(
    gateway: Running,
) -> None:
    """Issue 16 (low): invalid UTF-8 -> 1007, a protocol violation -> 1002, a header that
    claims 2^62 bytes -> 1009 at once; never a bare TCP close or a wait for the timeout."""
    host, port = gateway.host, gateway.port

    def raw_close(frame: bytes) -> int | None:
        found = raw_close_frame(frame)
        return found[0] if found else None

    def raw_close_frame(frame: bytes) -> tuple[int, str] | None:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            sock.sendall(frame)
            data = data.split(b"\r\n\r\n", 1)[1]
            while True:  # frames until the close frame (opcode 8)
                while len(data) < 2:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return None
                    data += chunk
                length = data[1] & 0x7F
                start = 2 + (2 if length == 126 else 8 if length == 127 else 0)
                if length == 126:
                    length = int.from_bytes(data[2:4], "big")
                while len(data) < start + length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return None
                    data += chunk
                if data[0] & 0x0F == 0x8:
                    payload = data[start : start + length]
                    return int.from_bytes(payload[:2], "big"), payload[2:].decode()
                data = data[start + length :]

    mask = b"\x00\x00\x00\x00"
    bad_utf8 = b"\x81\x82" + mask + b"\xff\xfe"  # text frame, masked, invalid UTF-8
    unmasked = b"\x81\x02{}"  # a client frame without a mask: RFC 6455 5.1
    bad_opcode = b"\x83\x80" + mask  # reserved opcode 3
    huge = b"\x81\xff" + (2**62).to_bytes(8, "big") + mask  # claims 2^62 bytes
    with trio.fail_after(10):
        assert await in_thread(raw_close, bad_utf8) == 1007
        assert await in_thread(raw_close, unmasked) == 1002
        assert await in_thread(raw_close, bad_opcode) == 1002
        assert await in_thread(raw_close, huge) == 1009
        # issue 16, high 2: a pre-auth frame over 64 KiB is refused on its header, before
        # its body is read or buffered (it used to be buffered up to maxPayload, 25 MiB)
        header_only = b"\x81\xff" + (24 * 1024 * 1024).to_bytes(8, "big") + mask
        assert await in_thread(raw_close_frame, header_only) == (1009, "preauth payload too large")


async def test_http_bodies_the_decoder_refuses_are_400_not_500(gateway: Running) -> None:
    """Issue 16 (low): deep JSON and lone surrogates in an HTTP body were 500s."""
    url = gateway.url.replace("ws://", "http://") + "/tools/invoke"
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    bodies: dict[str, tuple[str | bytes, str]] = {
        "deep": ("[" * 5000 + "]" * 5000, "nested deeper than 128 levels"),
        "surrogate": ('{"tool":"\\ud800"}', "a string holds a lone UTF-16 surrogate"),
        "not utf-8": (b'{"tool":"\xff"}', "not valid UTF-8"),
        "number": ('{"tool":"current_time","args":{"n":1e999}}', "a number is out of range"),
        "big int": ('{"tool":"x","n":123456789012345678901}', "n: number out of range"),
    }
    async with httpx.AsyncClient() as http:
        for name, (body, message) in bodies.items():
            response = await http.post(url, content=body, headers=headers)
            assert response.status_code == 400, name
            error = response.json()["error"]
            assert error["message"].startswith(f"Invalid JSON body: {message}"), (name, error)


def _settings(tmp_path: Path, **gateway: Any) -> Settings:
    raw = {"gateway": {"auth": {"rateLimit": {"maxAttempts": 3}}, **gateway}}
    config, _ = parse(json.dumps(raw), {})
    return make_settings(tmp_path, config=config)


def _ws_connect(url: str, token: str, headers: dict[str, str]) -> dict[str, Any]:
    with open_raw(url, additional_headers=headers) as ws:
        res = handshake(ws, token=token)
        return res


async def test_a_same_host_reverse_proxy_does_not_make_everyone_loopback(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16, medium 5 (FAILURE-MODES 21): behind a same-host reverse proxy every client
    looked like loopback and was exempt from the failed-auth limiter. Forwarding headers
    from an undeclared proxy make the request non-local: the limiter applies."""
    running = await start_gateway(_settings(tmp_path))
    proxied = {"X-Forwarded-For": "203.0.113.7"}

    def guess() -> list[str]:
        codes = []
        for _ in range(4):
            res = _ws_connect(running.url, "wrong-token", proxied)
            codes.append(res["error"]["details"]["code"])
        return codes

    codes = await in_thread(guess)
    assert codes == ["AUTH_TOKEN_MISMATCH"] * 3 + ["AUTH_RATE_LIMITED"]
    url = running.url.replace("ws://", "http://") + "/tools/invoke"
    async with httpx.AsyncClient() as http:
        statuses = []
        for _ in range(4):
            response = await http.post(
                url, json={}, headers={"authorization": "Bearer nope", **proxied}
            )
            statuses.append(response.status_code)
        assert statuses[-1] == 429
        # the machine's own user, directly on loopback, is still exempt (exemptLoopback)
        direct = await http.post(
            url, json={"tool": "current_time"}, headers={"authorization": "Bearer nope"}
        )
        assert direct.status_code == 401


async def test_trusted_proxies_name_the_client_for_limiter_and_presence(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """OPERATIONS.md B.5: through a trusted proxy, X-Forwarded-For names the client: each
    gets its own limiter bucket, and presence shows the client's address."""
    running = await start_gateway(_settings(tmp_path, trustedProxies=["127.0.0.1"]))

    def scenario() -> list[dict[str, Any]]:
        for _ in range(3):
            _ws_connect(running.url, "wrong", {"X-Forwarded-For": "203.0.113.1"})
        locked = _ws_connect(running.url, TOKEN, {"X-Forwarded-For": "203.0.113.1"})
        assert locked["error"]["details"]["code"] == "AUTH_RATE_LIMITED"
        with open_raw(running.url, additional_headers={"X-Forwarded-For": "203.0.113.2"}) as ws:
            assert handshake(ws)["ok"] is True
            listing: list[dict[str, Any]] = request(ws, "system-presence")["payload"]
            return listing

    listing = await in_thread(scenario)
    assert "203.0.113.2" in [row.get("ip") for row in listing]


EVIL = "http://evil.example"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/150.0"


def _upgrade_status(running: Running, headers: dict[str, str]) -> int:
    """The HTTP status of a WebSocket upgrade request sent with ``headers``."""
    lines = [
        "GET / HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection((running.host, running.port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            data += sock.recv(4096)
    return int(data.split(b" ", 2)[1])


async def test_no_web_page_on_another_origin_can_open_the_websocket(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16, high 3: an upgrade from any web page (a foreign Origin, Origin: null, a
    rebound Host) was accepted; with auth none a website got operator.admin. Now: 403 before
    the upgrade. The gateway's own page on loopback, and clients without Origin, get in."""
    running = await start_gateway(make_settings(tmp_path, token=None, auth_mode="none"))
    port = running.port
    own = f"127.0.0.1:{port}"
    cases = {
        "foreign origin": ({"Host": own, "Origin": EVIL}, 403),
        "null origin": ({"Host": own, "Origin": "null"}, 403),
        "rebound host": ({"Host": f"evil.example:{port}", "Origin": f"{EVIL}:{port}"}, 403),
        "rebound host, no origin": (
            {"Host": f"evil.example:{port}", "User-Agent": BROWSER_UA},
            403,
        ),
        "other local page": ({"Host": own, "Origin": "http://127.0.0.1:3000"}, 403),
        "own page": ({"Host": own, "Origin": f"http://{own}"}, 101),
        "cli": ({"Host": own}, 101),
    }
    for name, (headers, expected) in cases.items():
        assert await in_thread(_upgrade_status, running, headers) == expected, name


async def test_no_web_page_can_call_the_http_apis_across_sites(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16, high 3: a cross-site text/plain POST to /tools/invoke ran a tool in auth
    mode none. Now every browser-reachable POST gets the origin policy, and a rebound Host
    is refused on every request; server-to-server calls (no Origin, e.g. a webhook) pass."""
    from gateway.agent import tools

    ran: list[object] = []

    async def record(ctx: Any, args: Any) -> object:
        ran.append(args)
        return "ran"

    monkeypatch.setitem(
        tools.TOOLS, "probe_tool", tools.Tool("probe_tool", "records", {"type": "object"}, record)
    )
    raw = {"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": True}}}}}
    config, _ = parse(json.dumps(raw), {})
    running = await start_gateway(
        make_settings(tmp_path, config=config, token=None, auth_mode="none")
    )
    base = running.url.replace("ws://", "http://")
    body = '{"tool":"probe_tool"}'
    async with httpx.AsyncClient(base_url=base) as http:
        text_plain = {"content-type": "text/plain", "origin": EVIL, "user-agent": BROWSER_UA}
        cross = await http.post("/tools/invoke", content=body, headers=text_plain)
        form = await http.post(
            "/tools/invoke",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded", "origin": "null"},
        )
        no_origin_but_cross_site = await http.post(
            "/tools/invoke", content=body, headers={"sec-fetch-site": "cross-site"}
        )
        rebound = await http.get(
            "/v1/models", headers={"host": "evil.example", "user-agent": BROWSER_UA}
        )
        assert ran == []
        server_to_server = await http.post("/tools/invoke", content=body)
        own_page = await http.get("/v1/models", headers={"user-agent": BROWSER_UA})
    for response in (cross, form, no_origin_but_cross_site, rebound):
        assert response.status_code == 403, response.text
    assert cross.json()["error"]["message"] == "origin not allowed"
    assert rebound.json()["error"]["message"] == "host not allowed"
    assert server_to_server.status_code == 200
    assert ran == [{}]
    assert own_page.status_code == 200


async def test_browser_password_guesses_are_never_loopback_exempt(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16, high 3: with a password, a page could guess ~360 times a second because
    loopback is exempt from the limiter. A browser's attempts are bucketed per Origin and
    never exempt, even from the gateway's own page."""
    raw = {"gateway": {"auth": {"mode": "password", "rateLimit": {"maxAttempts": 3}}}}
    config, _ = parse(json.dumps(raw), {})
    running = await start_gateway(
        make_settings(tmp_path, config=config, token=None, password="correct horse")
    )
    origin = {"Origin": f"http://127.0.0.1:{running.port}"}

    def guess() -> list[str]:
        codes = []
        for _ in range(4):
            with open_raw(running.url, additional_headers=origin) as ws:
                recv_json(ws)
                frame = connect_frame(token=None, auth={"password": "guess"})
                ws.send(json.dumps(frame))
                codes.append(recv_json(ws)["error"]["details"]["code"])
        return codes

    assert await in_thread(guess) == ["AUTH_PASSWORD_MISMATCH"] * 3 + ["AUTH_RATE_LIMITED"]


def _raw_http(running: Running, data: bytes) -> bytes:
    with socket.create_connection((running.host, running.port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
            if b"\r\n\r\n" in received or received.startswith(b"\x00"):
                return received


async def test_cleartext_http2_is_not_served(gateway: Running) -> None:
    """Issue 16 (low): the port spoke cleartext HTTP/2 (h2c) without it being documented or
    tested. Decided: it is off. An h2c upgrade is answered in HTTP/1.1; the HTTP/2 preface
    gets an HTTP/1.1 error instead of an HTTP/2 SETTINGS frame."""
    upgrade = (
        b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
    )
    answer = await in_thread(_raw_http, gateway, upgrade)
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:60]
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    answer = await in_thread(_raw_http, gateway, preface)
    assert answer.startswith(b"HTTP/1.1 "), answer[:60]


async def test_read_file_refuses_hard_links_nul_bytes_and_absurd_paths(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16 (low): read_file followed a hard link out of the workspace; a NUL byte or a
    5,000-character path was a 500. Now each is a 400 that names the problem."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("top secret")
    (workspace / "innocent.txt").hardlink_to(secret)
    (workspace / "fine.txt").write_text("hello")
    config, _ = parse(json.dumps({"agents": {"defaults": {"workspace": str(workspace)}}}), {})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    url = running.url.replace("ws://", "http://") + "/tools/invoke"
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient() as http:

        async def read(path: str) -> httpx.Response:
            body = {"tool": "read_file", "args": {"path": path}}
            return await http.post(url, json=body, headers=auth)

        fine = await read("fine.txt")
        linked = await read("innocent.txt")
        nul = await read("fine.txt\x00.png")
        long = await read("a/" * 2500)
        long_name = await read("x" * 5000)
    assert fine.json()["result"]["content"] == "hello"
    for response in (linked, nul, long, long_name):
        assert response.status_code == 400, response.text
        assert "top secret" not in response.text
    assert "has other hard links" in linked.json()["error"]["message"]
    assert nul.json()["error"]["message"] == "args.path: must not contain a NUL byte"
    assert long.json()["error"]["message"] == "args.path: longer than 4096 characters"


async def test_after_hello_frames_up_to_max_payload_pass_and_bigger_are_1009(
    gateway: Running,
) -> None:
    """The pre-auth cap is lifted at hello-ok: a 1 MiB request is answered; a header over
    maxPayload closes 1009 at once."""
    from .rawws import RawClient

    def client() -> tuple[bool, int | None]:
        raw = RawClient(gateway.url)
        assert raw.handshake()["ok"] is True
        big = {"type": "req", "id": "big", "method": "health", "params": {"pad": "x" * MIB}}
        raw.send_json(big)
        answered = raw.recv_json()
        while answered.get("type") != "res":  # events (presence) may come first
            answered = raw.recv_json()
        header = b"\x81\xff" + (64 * MIB).to_bytes(8, "big") + b"\x00\x00\x00\x00"
        raw.sock.sendall(header)

        def read_until_closed() -> None:
            while True:
                raw.recv_json()

        with pytest.raises(ConnectionError):
            read_until_closed()
        raw.close()
        return answered.get("id") == "big", raw.close_code

    assert await in_thread(client) == (True, 1009)


MIB = 1024 * 1024


def _idle_sockets(host: str, port: int, count: int, source: str) -> list[socket.socket]:
    """``count`` connections from ``source`` that never send a byte (non-blocking connects:
    a full backlog must not hang the attacker either)."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex((host, port))
        held.append(sock)
    return held


def _handshake_ms(url: str) -> float:
    import time

    started = time.monotonic()
    with open_raw(url) as ws:
        assert handshake(ws)["ok"] is True
    return (time.monotonic() - started) * 1000


async def test_idle_sockets_from_one_address_do_not_lock_others_out(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16, high 2 and medium 6: there was no per-address connection cap. Now an
    address gets gateway.ws.maxPreAuthPerIp unauthenticated connections; the next one is
    refused at once (503), while others -- and that address's authenticated sockets -- go
    on."""
    ws = {"maxPreAuthPerIp": 8, "closeGraceMs": 50}
    config, _ = parse(json.dumps({"gateway": {"ws": ws}}), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    held = await in_thread(_idle_sockets, running.host, running.port, 8, "127.0.0.2")
    try:
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked()
        status = await in_thread(_upgrade_from, running, "127.0.0.2")
        assert status == 503
        assert await in_thread(_handshake_ms, running.url) < 5000  # another address: in
    finally:
        for sock in held:
            sock.close()

    def authenticated_ones() -> int:
        opened = 0
        with contextlib.ExitStack() as stack:
            for _ in range(12):  # more than the cap: each leaves the count once connected
                ws = stack.enter_context(open_raw(running.url, source_address=("127.0.0.3", 0)))
                assert handshake(ws, client=CLI)["ok"] is True  # (no presence events to read)
                opened += 1
        return opened

    assert await in_thread(authenticated_ones) == 12


CLI = {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"}


def _upgrade_from(running: Running, source: str) -> int:
    with socket.create_connection((running.host, running.port), 5, (source, 0)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = sock.recv(4096)
    return int(data.split(b" ", 2)[1])
