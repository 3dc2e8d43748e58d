"""The front door (server/front.py) and the lean WebSocket path (server/websocket.py).

Pure tests for head parsing, classification and the probe responses; socket tests for what
only a socket shows: a WebSocket never reaches hypercorn, probes and API requests share a
keep-alive connection, fragmented and binary messages, an upgrade refused by a check.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import h11
import pytest
import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from gateway.app import Running
from gateway.errors import Forbidden, GatewayError
from gateway.protocol.upgrade import Upgrade
from gateway.runtime import Runtime
from gateway.server import front
from gateway.server.front import Path, Probes, classify, parse_head

from .conftest import TOKEN, in_thread
from .test_handshake import RawClient


def head_of(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode() + b"\r\n"


# -- pure ------------------------------------------------------------------------------------


def client_frames(*messages: str | bytes, ping: bool = False) -> bytes:
    """What a real client (the library's ClientProtocol: random masks) sends."""
    from websockets.client import ClientProtocol as Client
    from websockets.protocol import State

    client = Client(parse_uri("ws://x/"), state=State.OPEN)
    for message in messages:
        if isinstance(message, str):
            client.send_text(message.encode())
        else:
            client.send_binary(message)
        if ping:
            client.send_ping(b"p")
    return b"".join(client.data_to_send())


def lean() -> Any:
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    from gateway.server.websocket import LeanWebSocket

    return LeanWebSocket(None, ServerProtocol(state=State.OPEN), None, lambda: None)  # type: ignore[arg-type]


def test_the_fast_path_takes_whole_data_frames_at_any_split() -> None:
    """Frames of 0, 1, 400 (16-bit length) bytes and a binary one, split at every byte."""
    texts = ["", "a", "é" * 200, "y" * 1000]
    wire = client_frames(*texts, b"\xff\x00")
    for cut in range(len(wire) + 1):
        ws = lean()
        assert ws._parse(wire[:cut]) == b""
        assert ws._parse(wire[cut:]) == b""
        assert ws._messages == [*texts, ""]  # binary, not UTF-8: not JSON, ignored later
        assert ws._pending == b""


def test_the_fast_path_hands_the_rest_to_the_library_at_a_frame_boundary() -> None:
    wire = client_frames("one", ping=True) + client_frames("two")
    ws = lean()
    rest = ws._parse(wire)
    assert ws._messages == ["one"]
    ws.protocol.receive_data(rest)  # the library starts at the ping: a valid stream
    frames = [f for f in ws.protocol.events_received() if isinstance(f, Frame)]
    assert [f.opcode for f in frames] == [Opcode.PING, Opcode.TEXT]
    assert frames[1].data == b"two"


def test_the_fast_path_leaves_frames_over_its_cap_and_invalid_text_to_the_rules() -> None:
    big = client_frames("z" * 70_000)  # over the pre-auth cap: the library refuses it
    ws = lean()
    assert ws._parse(big) == big
    binary = client_frames(b"\xc3\x28")  # not UTF-8; sent as a text frame instead:
    text = bytes([0x81]) + binary[1:]
    ws = lean()
    assert ws._parse(text) == b""
    assert ws._messages == [None]  # not UTF-8: the machine closes 1007


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frames_are_what_the_library_would_send(size: int) -> None:
    """``wsframes.text_frame`` frames data itself (no payload copies); the bytes are the
    library's own framing of the same message, in one piece or in a broadcast's three."""
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    from gateway.server.wsframes import text_frame

    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    library = ServerProtocol(state=State.OPEN)
    library.send_text(payload)
    expected = b"".join(library.data_to_send())
    assert b"".join(text_frame(payload.decode())) == expected
    third = len(payload) // 3
    pieces = (payload[:third], payload[third : 2 * third], payload[2 * third :])
    assert b"".join(text_frame(pieces)) == expected


@pytest.mark.parametrize(
    ("request_text", "path"),
    [
        ("GET / HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\n", Path.WEBSOCKET),
        ("GET /any/path?q=1 HTTP/1.1\nHost: x\nUpgrade: WebSocket\n", Path.WEBSOCKET),
        ("GET /healthz HTTP/1.1\nHost: x\n", Path.PROBE),
        ("HEAD /readyz?verbose HTTP/1.1\nHost: x\n", Path.PROBE),
        ("GET /health HTTP/1.0\n", Path.PROBE),
        ("POST /healthz HTTP/1.1\nHost: x\nContent-Length: 0\n", Path.HYPERCORN),  # 405 there
        ("GET /healthz HTTP/1.1\nHost: x\nContent-Length: 3\n", Path.HYPERCORN),
        ("GET /healthz HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n", Path.HYPERCORN),
        ("POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Length: 2\n", Path.HYPERCORN),
        ("GET /metrics HTTP/1.1\nHost: x\n", Path.HYPERCORN),
    ],
)
def test_classify(request_text: str, path: Path) -> None:
    head = parse_head(head_of(request_text))
    assert head is not None
    assert classify(head) is path


def test_probe_heads_are_parsed_once_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(front, "_known_probes", {})
    monkeypatch.setattr(front, "KNOWN_PROBES_MAX", 2)
    probe = head_of("GET /healthz HTTP/1.1\nHost: x\n")
    first = parse_head(probe + b"GET /next")
    assert first is not None
    assert parse_head(probe) is first  # the same bytes: not parsed again
    api = head_of("GET /metrics HTTP/1.1\nHost: x\n")
    assert parse_head(api) is not parse_head(api)  # only probes are remembered
    for n in range(5):
        parse_head(head_of(f"GET /healthz?n={n} HTTP/1.1\nHost: x\n"))
    assert len(front._known_probes) == 2


def test_a_malformed_head_is_left_to_hypercorn() -> None:
    assert parse_head(b"NOT A REQUEST\r\n\r\n") is None


def test_head_length_and_keep_alive() -> None:
    data = head_of("GET /healthz HTTP/1.1\nHost: x\n") + b"GET /readyz"
    head = parse_head(data)
    assert head is not None
    assert data[head.length :] == b"GET /readyz"
    assert head.keep_alive
    closing = parse_head(head_of("GET /healthz HTTP/1.1\nHost: x\nConnection: close\n"))
    assert closing is not None
    assert not closing.keep_alive
    old = parse_head(head_of("GET /healthz HTTP/1.0\n"))
    assert old is not None
    assert not old.keep_alive


def test_upgrade_info_carries_origin_host_and_peer() -> None:
    head = parse_head(
        head_of(
            "GET /ws?x=1 HTTP/1.1\nHost: gw.local:1\nOrigin: http://ui.local\nUpgrade: websocket\n"
        )
    )
    assert head is not None
    upgrade = head.upgrade(("10.0.0.2", 5000), ("127.0.0.1", 1))
    assert upgrade == Upgrade("/ws?x=1", head.headers, ("10.0.0.2", 5000), ("127.0.0.1", 1))
    assert upgrade.origin == "http://ui.local"
    assert upgrade.host == "gw.local:1"
    assert upgrade.client_ip == "10.0.0.2"


@pytest.mark.parametrize(
    ("path", "ready", "draining", "status", "body"),
    [
        ("/healthz", False, True, 200, {"ok": True, "status": "live"}),
        ("/readyz", True, False, 200, {"ok": True, "status": "ready"}),
        ("/ready", False, False, 503, {"ok": False, "status": "starting"}),
        ("/readyz", True, True, 503, {"ok": False, "status": "draining"}),
    ],
)
def test_probe_responses_are_valid_http(
    path: str, ready: bool, draining: bool, status: int, body: dict[str, object]
) -> None:
    probes = Probes()
    head = parse_head(head_of(f"GET {path} HTTP/1.1\nHost: x\n"))
    assert head is not None
    found, wire = probes.answer(head, ready, draining)
    assert found == status
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target=path, headers=[("host", "x")]))
    client.receive_data(wire)
    response = client.next_event()
    assert isinstance(response, h11.Response)
    assert response.status_code == status
    data = client.next_event()
    assert isinstance(data, h11.Data)
    assert json.loads(data.data) == body
    assert isinstance(client.next_event(), h11.EndOfMessage)
    assert probes.answer(head, ready, draining)[1] is wire  # framed once per state


# -- over sockets --------------------------------------------------------------------------------


def http_exchange(port: int, requests: list[tuple[str, str, bytes]]) -> list[int]:
    """Send ``(method, target, raw head)`` requests pipelined on one connection; the
    statuses of the answers, read in order with h11."""
    statuses: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(raw for _, _, raw in requests))
        leftover = b""
        for method, target, _ in requests:
            client = h11.Connection(h11.CLIENT)
            client.send(h11.Request(method=method, target=target, headers=[("host", "x")]))
            client.send(h11.EndOfMessage())
            if leftover:  # (receive_data(b"") would mean EOF)
                client.receive_data(leftover)
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(sock.recv(65536))
                elif isinstance(event, h11.Response):
                    statuses.append(event.status_code)
                elif isinstance(event, h11.EndOfMessage):
                    break
            leftover = client.trailing_data[0]
    return statuses


async def test_probes_and_api_requests_share_a_keep_alive_connection(gateway: Running) -> None:
    """Two probes answered at the front door, then /metrics handed to hypercorn with the
    bytes already read: three answers, in order, on one connection."""
    requests = [
        ("GET", "/healthz", head_of("GET /healthz HTTP/1.1\nHost: x\n")),
        ("HEAD", "/readyz", head_of("HEAD /readyz HTTP/1.1\nHost: x\n")),
        (
            "GET",
            "/metrics",
            head_of(f"GET /metrics HTTP/1.1\nHost: x\nAuthorization: Bearer {TOKEN}\n"),
        ),
    ]

    def client() -> list[int]:
        return http_exchange(gateway.port, requests)

    with trio.fail_after(10):
        assert await in_thread(client) == [200, 200, 200]


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])  # the front door; hypercorn
async def test_a_keep_alive_connection_closes_after_the_idle_timeout(
    gateway: Running, mock_clock: trio.testing.MockClock, path: str
) -> None:
    """The idle sweep (Streams.expire_idle) closes a connection that waited ~5 s (the
    keep-alive timeout) for its next request -- not sooner, and within a sweep of it."""
    mock_clock.autojump_threshold = 0.05
    stream = await trio.open_tcp_stream("127.0.0.1", gateway.port)
    with trio.fail_after(30):
        auth = f"Authorization: Bearer {TOKEN}\n" if path == "/metrics" else ""
        await stream.send_all(head_of(f"GET {path} HTTP/1.1\nHost: x\n{auth}"))
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some()
        answered = trio.current_time()
        while await stream.receive_some():  # the rest of the body, then EOF
            pass
    assert received.startswith(b"HTTP/1.1 200")
    assert 5.0 <= trio.current_time() - answered <= 5.0 + 1.25 + 0.5
    await stream.aclose()


def response(raw: RawClient, request_id: str) -> dict[str, Any]:
    while True:
        frame = raw.recv_json()
        if frame.get("type") == "res" and frame.get("id") == request_id:
            return frame


async def test_an_open_websocket_connection_has_no_hypercorn_protocol(gateway: Running) -> None:
    with trio.fail_after(10):
        raw = await trio.to_thread.run_sync(RawClient, gateway.url)
        try:
            await trio.to_thread.run_sync(raw.handshake)
            (conn,) = gateway.streams.websockets()
            assert conn.http is None
        finally:
            raw.close()


async def test_fragmented_and_binary_messages_are_assembled(gateway: Running) -> None:
    def client() -> list[bool]:
        with RawClient(gateway.url) as raw:
            raw.handshake()
            text = json.dumps({"type": "req", "id": "frag-1", "method": "health"}).encode()
            raw.protocol.send_text(text[:10], fin=False)
            raw.protocol.send_continuation(text[10:20], fin=False)
            raw.protocol.send_continuation(text[20:], fin=True)
            raw.flush()
            first = response(raw, "frag-1")
            raw.send_binary(json.dumps({"type": "req", "id": "bin-1", "method": "health"}).encode())
            second = response(raw, "bin-1")
            return [first["ok"], second["ok"]]

    with trio.fail_after(10):
        assert await in_thread(client) == [True, True]


async def test_an_upgrade_check_refuses_with_its_http_status(gateway: Running) -> None:
    def only_from_the_ui(rt: Runtime, upgrade: Upgrade) -> GatewayError | None:
        if upgrade.origin == "http://evil.example":
            return Forbidden("origin not allowed")
        return None

    gateway.runtime.upgrade_checks.append(only_from_the_ui)
    request = head_of(
        "GET / HTTP/1.1\nHost: 127.0.0.1\nUpgrade: websocket\nConnection: Upgrade\n"
        "Origin: http://evil.example\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
        "Sec-WebSocket-Version: 13\n"
    )

    def client() -> bytes:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    with trio.fail_after(10):
        answer = await in_thread(client)
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert answer.endswith(b"origin not allowed\n")
    with trio.fail_after(10):
        await in_thread(lambda: RawClient(gateway.url).close())  # other origins still get in


@pytest.mark.parametrize("split", [0, 9])
async def test_a_frame_sent_with_the_upgrade_request_is_not_lost(
    gateway: Running, split: int
) -> None:
    """A client that sends its first frame in the same packet as the upgrade request --
    all of it, or (``split``) only its first bytes, the rest after the challenge."""

    def client() -> str:
        protocol = ClientProtocol(parse_uri(gateway.url))
        protocol.send_request(protocol.connect())
        request = b"".join(protocol.data_to_send())
        text = json.dumps({"type": "req", "id": "early", "method": "connect"}).encode()
        frame = Frame(Opcode.TEXT, text).serialize(mask=True, extensions=[])
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
            cut = split or len(frame)
            sock.sendall(request + frame[:cut])  # the connect frame before even the challenge
            texts: list[dict[str, Any]] = []
            if cut < len(frame):
                while not texts:  # the challenge: then the rest of the frame
                    protocol.receive_data(sock.recv(65536))
                    texts += [
                        json.loads(bytes(e.data))
                        for e in protocol.events_received()
                        if isinstance(e, Frame) and e.opcode is Opcode.TEXT
                    ]
                sock.sendall(frame[cut:])
            while not any(t.get("id") == "early" for t in texts):
                protocol.receive_data(sock.recv(65536))
                for event in protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        texts.append(json.loads(bytes(event.data)))
        (res,) = [t for t in texts if t.get("id") == "early"]
        return str(res["error"]["message"])

    with trio.fail_after(10):
        message = await in_thread(client)
    assert message.startswith("invalid connect params: ")  # it was read, and judged
