"""Handshake conformance over real sockets, written from PROTOCOL.md with the plain client.

Sections checked: 0 (summary items 2-6), 2.2 (binary frames tolerated), 2.3 / 2.4 (the
error matrix rows up to and including hello-ok), 2.5 (close codes), 3.2 (challenge),
3.3 (connect params schema), 3.5 (shared-secret auth and the failed-attempt limiter),
3.7 (protocol negotiation), 3.8 (hello-ok), 5.3 (auth detail codes), 14 (res before close).

The helpers at the top (``RawClient``, ``rejected``, ``recv_close``, ...) are shared with the
other ``test_*`` modules of this suite.

Two clients, both from the ``websockets`` package: the threaded sync client (``open_raw``)
for sessions that stay up, and :class:`RawClient` -- websockets' own sans-I/O
``ClientProtocol`` over a plain socket -- wherever the server is expected to close. The
threaded client silently drops frames it has already parsed when writing its close reply
fails (websockets/sync/connection.py: "If self.send_data raised an exception, then events
are lost"), which makes "res, then close" flaky to observe through it whenever the server
resets the socket; RawClient never drops what it has read, and lets a test decide when
(or whether) the reply to the server's close frame goes out.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection
from websockets.uri import parse_uri

from gateway.app import Running
from gateway.config.model import Config, RateLimit

from .conftest import (
    TOKEN,
    StartGateway,
    connect_frame,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
    recv_until,
)

MAX_CLOSE_REASON_BYTES = 123
PREAUTH_LIMIT = 64 * 1024


# -- helpers shared by this suite -------------------------------------------------------------


def client_info(
    mode: str = "test", *, client_id: str = "test", instance_id: str | None = None
) -> dict[str, Any]:
    """A valid ``connect.params.client`` block (section 3.3)."""
    return {
        "id": client_id,
        "version": "1.0.0",
        "platform": "linux",
        "mode": mode,
        "instanceId": instance_id or str(uuid.uuid4()),
    }


def send_json(ws: ClientConnection, frame: object) -> None:
    ws.send(json.dumps(frame))


def sync_challenge(ws: ClientConnection) -> dict[str, Any]:
    """Threaded client: the first frame is ``event connect.challenge`` (section 3.2)."""
    frame = recv_json(ws)
    assert frame.get("type") == "event", frame
    assert frame.get("event") == "connect.challenge", frame
    return frame


def expected_reason(message: str) -> str:
    """Close reasons are the error text cut to 123 UTF-8 bytes (section 2.4)."""
    return message.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def recv_close(ws: ClientConnection, timeout: float = 5) -> tuple[int, str, list[dict[str, Any]]]:
    """Threaded client: read until the server closes; ``(code, reason, frames before it)``."""
    frames: list[dict[str, Any]] = []
    while True:
        try:
            raw = ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            received = exc.rcvd
            break
        frames.append(json.loads(raw))
    if received is None:
        raise AssertionError(f"connection dropped without a close frame (frames: {frames})")
    return received.code, received.reason, frames


def responses(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == "res"]


class RawClient:
    """The ``websockets`` sans-I/O ``ClientProtocol`` over a blocking socket.

    Pings are answered; the automatic reply to the server's close frame is held back until
    :meth:`flush` is called, so a test can watch what the server does before it arrives.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        uri = parse_uri(url)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=5)
        self.protocol = ClientProtocol(uri)
        upgrade = self.protocol.connect()
        for name, value in (headers or {}).items():
            upgrade.headers[name] = value
        self.protocol.send_request(upgrade)
        self.flush()
        self.frames: deque[Frame] = deque()
        while self.protocol.state is State.CONNECTING:
            self.pump()
        assert self.protocol.state is State.OPEN, self.protocol.handshake_exc

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        """Write whatever the protocol has queued (including a pending close reply)."""
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def pump(self) -> None:
        data = self.sock.recv(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self.frames.append(event)

    def next_frame(self) -> Frame:
        """The next data or close frame; pings are answered (until a close arrives)."""
        while True:
            while not self.frames:
                self.pump()
            frame = self.frames.popleft()
            if frame.opcode is Opcode.PING and self.protocol.close_rcvd is None:
                self.flush()
            if frame.opcode not in (Opcode.PING, Opcode.PONG):
                return frame

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        self.flush()

    def send_json(self, frame: object) -> None:
        self.send_text(json.dumps(frame))

    def recv_json(self) -> dict[str, Any]:
        frame = self.next_frame()
        assert frame.opcode is Opcode.TEXT, frame
        assert frame.fin, frame
        data: dict[str, Any] = json.loads(bytes(frame.data))
        return data

    def read_challenge(self) -> dict[str, Any]:
        """The first frame on every socket is ``event connect.challenge`` (section 3.2)."""
        frame = self.recv_json()
        assert frame.get("type") == "event", frame
        assert frame.get("event") == "connect.challenge", frame
        return frame

    def handshake(self, **connect_kwargs: Any) -> dict[str, Any]:
        self.read_challenge()
        request = connect_frame(**connect_kwargs)
        self.send_json(request)
        while True:
            frame = self.recv_json()
            if frame.get("type") == "res" and frame["id"] == request["id"]:
                return frame

    def until_close(self) -> tuple[list[dict[str, Any]], Close]:
        """Text frames up to the server's close frame, and that close (not yet answered)."""
        texts: list[dict[str, Any]] = []
        while True:
            frame = self.next_frame()
            if frame.opcode is Opcode.CLOSE:
                return texts, Close.parse(frame.data)
            if frame.opcode is Opcode.TEXT:
                texts.append(json.loads(bytes(frame.data)))

    def tcp_end(self, timeout: float) -> str:
        """``"open"`` if nothing arrives within ``timeout``, ``"fin"`` on EOF, ``"reset"`` on RST."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return "open"
        except ConnectionResetError:
            return "reset"
        finally:
            self.sock.settimeout(5)
        assert data == b"", f"data after the close frame: {data!r}"
        return "fin"


def closed_after(url: str, first: str | bytes) -> tuple[int, str, list[dict[str, Any]]]:
    """Read the challenge, send ``first`` as the first frame, read to the server's close."""
    with RawClient(url) as conn:
        conn.read_challenge()
        if isinstance(first, bytes):
            conn.send_binary(first)
        else:
            conn.send_text(first)
        texts, close = conn.until_close()
    return close.code, close.reason, texts


def rejected(url: str, frame: dict[str, Any]) -> tuple[dict[str, Any], int, str]:
    """Send a first frame that must be refused with exactly one ``res`` and then a close."""
    code, reason, frames = closed_after(url, json.dumps(frame))
    res = responses(frames)
    assert len(res) == 1, f"expected exactly one res before the close, got {frames}"
    assert res[0]["id"] == frame["id"]
    assert res[0]["ok"] is False
    assert "payload" not in res[0]
    return res[0], code, reason


def connect_rejected(url: str, **kwargs: Any) -> tuple[dict[str, Any], int, str]:
    return rejected(url, connect_frame(**kwargs))


def connect_accepted(url: str, **kwargs: Any) -> dict[str, Any]:
    with open_raw(url) as ws:
        hello = handshake(ws, **kwargs)
        assert hello["ok"] is True, hello
        assert hello["payload"]["type"] == "hello-ok"
        return hello


def rate_limited_config(*, exempt_loopback: bool, max_attempts: int = 3) -> Config:
    base = Config()
    limit = RateLimit(
        max_attempts=max_attempts,
        window_ms=60_000,
        lockout_ms=300_000,
        exempt_loopback=exempt_loopback,
    )
    auth = attrs.evolve(base.gateway.auth, rate_limit=limit)
    return attrs.evolve(base, gateway=attrs.evolve(base.gateway, auth=auth))


# -- 3.2 connect.challenge --------------------------------------------------------------------


async def test_challenge_is_first_frame_with_nonce_and_ts_and_no_seq(gateway: Running) -> None:
    """Section 3.2: challenge first, non-empty nonce, integer ms ts, no seq; one nonce per socket."""

    def client() -> list[str]:
        nonces = []
        for _ in range(2):
            with open_raw(gateway.url) as ws:
                before = int(time.time() * 1000)
                frame = recv_json(ws)
                after = int(time.time() * 1000)
                assert frame["type"] == "event"
                assert frame["event"] == "connect.challenge"
                assert "seq" not in frame
                assert "stateVersion" not in frame
                payload = frame["payload"]
                assert isinstance(payload["nonce"], str)
                assert payload["nonce"]
                ts = payload["ts"]
                assert isinstance(ts, int)
                assert not isinstance(ts, bool)
                assert before - 60_000 <= ts <= after + 60_000
                nonces.append(payload["nonce"])
        return nonces

    first, second = await in_thread(client)
    assert first != second


# -- 2.4 first-frame errors -----------------------------------------------------------------------


async def test_first_request_must_be_connect(gateway: Running) -> None:
    """Section 2.4: first req with method != connect -> INVALID_REQUEST res, close 1008 same text."""

    def client() -> None:
        frame = {"type": "req", "id": "first-1", "method": "health", "params": {}}
        res, code, reason = rejected(gateway.url, frame)
        message = "invalid handshake: first request must be connect"
        assert res["error"]["code"] == "INVALID_REQUEST"
        assert res["error"]["message"] == message
        assert code == 1008
        assert reason == message

    await in_thread(client)


def _drop_client_version(frame: dict[str, Any]) -> None:
    del frame["params"]["client"]["version"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [(_drop_client_version, "client.version")],  # the whole matrix: test_connection.py
)
async def test_connect_params_failing_schema(gateway: Running, mutate: Any, field: str) -> None:
    """Section 2.4 / 3.3: bad connect params -> res "invalid connect params: <field>...", close 1008."""

    def client() -> None:
        frame = connect_frame()
        mutate(frame)
        res, code, reason = rejected(gateway.url, frame)
        message = res["error"]["message"]
        assert res["error"]["code"] == "INVALID_REQUEST"
        assert message.startswith("invalid connect params: "), message
        assert message.removeprefix("invalid connect params: ").startswith(field), message
        assert code == 1008
        assert reason == expected_reason(message)

    await in_thread(client)


async def test_connect_without_params_is_schema_failure(gateway: Running) -> None:
    """Section 2.2 / 2.4: absent connect params are {} and fail the connect schema (close 1008)."""

    def client() -> None:
        res, code, reason = rejected(gateway.url, {"type": "req", "id": "np", "method": "connect"})
        assert res["error"]["code"] == "INVALID_REQUEST"
        assert res["error"]["message"].startswith("invalid connect params: ")
        assert code == 1008
        assert reason == expected_reason(res["error"]["message"])

    await in_thread(client)


# -- 3.7 protocol negotiation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "mode", "role"),
    [(5, 5, "test", "operator")],  # the whole matrix: test_connection.py
)
async def test_protocol_mismatch(
    gateway: Running, low: int, high: int, mode: str, role: str
) -> None:
    """Section 2.4 / 3.7: range excluding 4 (outside the 3-windows) -> "protocol mismatch", close 1002.
    FAILURE-MODES 18: an old or new client outside the window gets an explicit mismatch, no crash."""

    def client() -> None:
        res, code, reason = connect_rejected(
            gateway.url, minProtocol=low, maxProtocol=high, role=role, client=client_info(mode)
        )
        error = res["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert error["message"] == "protocol mismatch"
        details = error["details"]
        assert details["code"] == "PROTOCOL_MISMATCH"
        assert details["clientMinProtocol"] == low
        assert details["clientMaxProtocol"] == high
        assert details["expectedProtocol"] == 4
        assert code == 1002
        assert reason == "protocol mismatch"

    await in_thread(client)


@pytest.mark.parametrize(
    ("low", "high", "mode", "role"),
    [(3, 4, "probe", "operator"), (3, 3, "node", "node")],  # all of them: test_connection.py
)
async def test_protocol_windows_accepted(
    gateway: Running, low: int, high: int, mode: str, role: str
) -> None:
    """Section 3.7: 4 in range; probes accept 3..4; role node + mode node accepts 3 (legacy node).
    FAILURE-MODES 18: overlapping ranges are accepted."""

    def client() -> None:
        hello = connect_accepted(
            gateway.url, minProtocol=low, maxProtocol=high, role=role, client=client_info(mode)
        )
        assert hello["payload"]["protocol"] == 4
        assert hello["payload"]["auth"]["role"] == role

    await in_thread(client)


# -- 3.5 shared-secret auth -------------------------------------------------------------------


async def test_wrong_token_is_unauthorized(gateway: Running) -> None:
    """Sections 2.4 / 5.3: wrong token -> "unauthorized: gateway token mismatch (...)", close 1008 same text."""

    def client() -> None:
        res, code, reason = connect_rejected(gateway.url, token="not-the-token")
        error = res["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert error["message"].startswith("unauthorized: gateway token mismatch ("), error
        assert error["message"].endswith(")")
        assert error["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        assert code == 1008
        assert reason == expected_reason(error["message"])

    await in_thread(client)


async def test_missing_token_is_unauthorized(gateway: Running) -> None:
    """Sections 2.4 / 5.3: no token -> "unauthorized: gateway token missing (...)", AUTH_TOKEN_MISSING."""

    def client() -> None:
        params: dict[str, Any]
        for params in (
            {"token": None},
            {"token": None, "auth": {}},
            {"token": None, "auth": {"token": ""}},
        ):
            res, code, reason = connect_rejected(gateway.url, **params)
            error = res["error"]
            assert error["code"] == "INVALID_REQUEST"
            assert error["message"].startswith("unauthorized: gateway token missing ("), error
            assert error["details"]["code"] == "AUTH_TOKEN_MISSING"
            assert code == 1008
            assert reason == expected_reason(error["message"])

    await in_thread(client)


async def test_password_mode(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Section 3.5 / 5.3: password mode: wrong -> AUTH_PASSWORD_MISMATCH, missing -> AUTH_PASSWORD_MISSING."""
    running = await start_gateway(
        make_settings(tmp_path, token=None, password="pw-1234", auth_mode="password")
    )

    def client() -> None:
        res, code, reason = connect_rejected(running.url, token=None, auth={"password": "wrong"})
        assert res["error"]["message"].startswith("unauthorized: gateway password mismatch ("), res
        assert res["error"]["details"]["code"] == "AUTH_PASSWORD_MISMATCH"
        assert (code, reason) == (1008, expected_reason(res["error"]["message"]))

        for params in ({"token": None}, {"token": TOKEN}):  # a token is not a password
            res, code, reason = connect_rejected(running.url, **params)
            assert res["error"]["message"].startswith("unauthorized: gateway password missing ("), (
                res
            )
            assert res["error"]["details"]["code"] == "AUTH_PASSWORD_MISSING"
            assert (code, reason) == (1008, expected_reason(res["error"]["message"]))

        hello = connect_accepted(running.url, token=None, auth={"password": "pw-1234"})
        assert hello["payload"]["snapshot"]["authMode"] == "password"

    await in_thread(client)


async def test_auth_mode_none_needs_no_secret(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Section 3.5 step 5: mode none passes without any secret."""
    running = await start_gateway(make_settings(tmp_path, token=None, auth_mode="none"))

    def client() -> None:
        hello = connect_accepted(running.url, token=None)
        assert hello["payload"]["snapshot"]["authMode"] == "none"
        assert hello["payload"]["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
        connect_accepted(running.url, token="anything")

    await in_thread(client)


# -- 3.5 failed-attempt limiter -----------------------------------------------------------------

RATE_LIMITED = "unauthorized: too many failed authentication attempts (retry later)"


async def test_rate_limit_locks_out_after_wrong_tokens(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 3.5 / 5.3: 3 wrong tokens lock the IP; even the right token then gets AUTH_RATE_LIMITED.
    FAILURE-MODES 19: brute force is locked out per address."""
    running = await start_gateway(
        make_settings(tmp_path, config=rate_limited_config(exempt_loopback=False))
    )

    def client() -> None:
        for _ in range(3):
            res, _, _ = connect_rejected(running.url, token="wrong")
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        for token in (TOKEN, "wrong"):
            res, code, reason = connect_rejected(running.url, token=token)
            error = res["error"]
            assert error["code"] == "INVALID_REQUEST"
            assert error["message"] == RATE_LIMITED
            assert error["retryable"] is True
            assert isinstance(error["retryAfterMs"], int)
            assert 0 < error["retryAfterMs"] <= 300_000
            assert error["details"]["code"] == "AUTH_RATE_LIMITED"
            assert code == 1008
            assert reason == expected_reason(RATE_LIMITED)

    await in_thread(client)


async def test_rate_limit_ignores_missing_tokens(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 3.5: only wrong secrets count; missing ones never lock out."""
    running = await start_gateway(
        make_settings(tmp_path, config=rate_limited_config(exempt_loopback=False))
    )

    def client() -> None:
        for _ in range(5):
            res, _, _ = connect_rejected(running.url, token=None)
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISSING"
        for _ in range(2):  # below max_attempts, so the missing ones must not have counted
            res, _, _ = connect_rejected(running.url, token="wrong")
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        connect_accepted(running.url)

    await in_thread(client)


async def test_rate_limit_exempts_loopback_by_default(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 3.5: with exempt_loopback (default) a loopback client is never locked out.
    FAILURE-MODES 19: the lockout never locks the local operator out."""
    running = await start_gateway(
        make_settings(tmp_path, config=rate_limited_config(exempt_loopback=True))
    )

    def client() -> None:
        for _ in range(6):
            res, _, _ = connect_rejected(running.url, token="wrong")
            assert res["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        connect_accepted(running.url)

    await in_thread(client)


# -- 2.4 malformed first frames, size cap, timeout -------------------------------------------------


@pytest.mark.parametrize("text", ["{not json"])  # more: test_connection.py
async def test_malformed_json_first_frame_closes_1000_without_res(
    gateway: Running, text: str
) -> None:
    """Section 2.4 / 2.5: unparseable first frame -> close 1000, empty reason, no res."""

    def client() -> None:
        code, reason, frames = closed_after(gateway.url, text)
        assert responses(frames) == []
        assert code == 1000
        assert reason == ""

    await in_thread(client)


@pytest.mark.parametrize(
    "frame",
    [{"type": "event", "event": "x"}, [1, 2, 3]],  # the whole matrix: test_connection.py
)
async def test_non_req_json_first_frame_closes_1008_without_res(
    gateway: Running, frame: object
) -> None:
    """Section 2.4: valid JSON that is not a req frame -> close 1008 "invalid request frame", no res."""

    def client() -> None:
        code, reason, frames = closed_after(gateway.url, json.dumps(frame))
        assert responses(frames) == []
        assert code == 1008
        assert reason == "invalid request frame"

    await in_thread(client)


def _padded_connect(total_bytes: int) -> str:
    """A valid connect frame padded (with a tolerated extra key) to exactly ``total_bytes``."""
    frame = connect_frame()
    frame["pad"] = ""
    base = len(json.dumps(frame).encode())
    frame["pad"] = "x" * (total_bytes - base)
    text = json.dumps(frame)
    assert len(text.encode()) == total_bytes
    return text


async def test_preauth_frame_over_64k_closes_1009(gateway: Running) -> None:
    """Section 2.3 / 2.4: a pre-handshake frame > 64 KiB -> close 1009 "preauth payload too large"."""

    def client() -> None:
        for first in (_padded_connect(PREAUTH_LIMIT + 1), "x" * 70_000, b"y" * 70_000):
            code, reason, frames = closed_after(gateway.url, first)
            assert frames == []
            assert code == 1009
            assert reason == "preauth payload too large"

    await in_thread(client)


async def test_preauth_frame_of_exactly_64k_is_accepted(gateway: Running) -> None:
    """Section 2.3: the cap is "larger than 65 536 bytes"; a connect of exactly 64 KiB passes."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            sync_challenge(ws)
            text = _padded_connect(PREAUTH_LIMIT)
            ws.send(text)
            res = recv_until(ws, lambda f: f.get("type") == "res")
        assert res["id"] == json.loads(text)["id"]
        assert res["ok"] is True
        assert res["payload"]["type"] == "hello-ok"

    await in_thread(client)


async def test_binary_connect_frame_is_tolerated(gateway: Running) -> None:
    """Section 2.2: the server tolerates binary messages by UTF-8 decoding them."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            sync_challenge(ws)
            frame = connect_frame()
            ws.send(json.dumps(frame).encode())
            res = recv_until(ws, lambda f: f.get("type") == "res")
        assert res["id"] == frame["id"]
        assert res["ok"] is True
        assert res["payload"]["type"] == "hello-ok"

    await in_thread(client)


async def test_handshake_timeout_closes_1000(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Section 2.3 / 2.4: no connect within the handshake timeout -> the server closes (1000)."""
    running = await start_gateway(make_settings(tmp_path, handshake_timeout_ms=300))

    def client() -> float:
        with RawClient(running.url) as conn:
            conn.read_challenge()
            started = time.monotonic()
            frames, close = conn.until_close()
            elapsed = time.monotonic() - started
        code, reason = close.code, close.reason
        assert responses(frames) == []
        assert code == 1000
        assert reason == ""
        return elapsed

    elapsed = await in_thread(client)
    assert elapsed < 5


async def test_rejected_handshake_waits_for_client_close_reply(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Sections 2.4 / 14 (res before close) and RFC 6455 5.5.1 / 7.1.1: after the error res
    and close 1008 the server keeps the TCP connection until the client's close reply (we
    allow closeGraceMs = 5 s and answer after 1 s), then ends it with FIN.

    Ending TCP right after its own close frame leaves the client's reply -- or a pong to the
    server's ping -- unread, which the kernel answers with RST; the threaded ``websockets``
    client then drops the res it already received (seen here about once in 30 rejections),
    and a CLI would show a bare close instead of the auth error.
    """
    running = await start_gateway(make_settings(tmp_path, close_grace_ms=5000))

    def client() -> None:
        with RawClient(running.url) as conn:
            conn.read_challenge()
            frame = connect_frame(token="wrong")
            conn.send_json(frame)
            texts, close = conn.until_close()
            assert [r["id"] for r in responses(texts)] == [frame["id"]]
            assert close.code == 1008
            early = conn.tcp_end(timeout=1.0)
            assert early == "open", f"server ended TCP ({early}) before the client's close reply"
            conn.flush()  # our close reply
            assert conn.tcp_end(timeout=5) == "fin"

    await in_thread(client)


# -- 3.8 hello-ok ---------------------------------------------------------------------------------


async def test_hello_ok_shape(gateway: Running) -> None:
    """Section 3.8 / 13.2 item 7: required hello-ok fields and their types."""

    def client() -> dict[str, Any]:
        frame = connect_frame(request_id="hello-id-1")
        with open_raw(gateway.url) as ws:
            sync_challenge(ws)
            send_json(ws, frame)
            res = recv_until(ws, lambda f: f.get("type") == "res")
        assert res["id"] == "hello-id-1"
        assert res["ok"] is True
        assert "error" not in res
        payload: dict[str, Any] = res["payload"]
        return payload

    payload = await in_thread(client)
    assert payload["type"] == "hello-ok"
    assert payload["protocol"] == 4
    assert isinstance(payload["server"]["version"], str)
    assert payload["server"]["version"]
    assert isinstance(payload["server"]["connId"], str)
    assert payload["server"]["connId"]
    assert all(isinstance(m, str) and m for m in payload["features"]["methods"])
    assert {"health", "status", "system-presence", "system-event"} <= set(
        payload["features"]["methods"]
    )
    assert {"connect.challenge", "tick", "presence", "health", "shutdown"} <= set(
        payload["features"]["events"]
    )
    snapshot = payload["snapshot"]
    assert isinstance(snapshot["presence"], list)
    assert snapshot["presence"]
    assert isinstance(snapshot["health"], dict)
    version = snapshot["stateVersion"]
    assert set(version) == {"presence", "health"}
    assert all(isinstance(v, int) and v >= 1 for v in version.values())
    assert isinstance(snapshot["uptimeMs"], int)
    assert snapshot["uptimeMs"] >= 0
    assert payload["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
    policy = payload["policy"]
    assert policy == {"maxPayload": 26214400, "maxBufferedBytes": 52428800, "tickIntervalMs": 30000}
