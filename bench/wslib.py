"""Which WebSocket protocol library the gateway's lean path uses: ``python -m bench.wslib``.

In-process, no sockets: after an opening handshake, each round feeds one masked client
text frame (a ``system-presence`` request) to the library, takes the message out, and
frames a presence-sized reply (~640 bytes) for sending -- the per-request work the
library does for the gateway. Prints microseconds per round for each candidate, best of
``--repeat`` runs (a shared machine only ever slows a run down). Also the opening
handshake alone (a new protocol object, the upgrade request parsed, the 101 framed).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable

REQUEST = b'{"type":"req","id":"r-123456","method":"system-presence","params":{}}'
REPLY = json.dumps(
    {"type": "res", "id": "r-123456", "ok": True, "payload": [{"host": "x" * 40, "ip": None}] * 8}
)[:640]
KEY = base64.b64encode(os.urandom(16)).decode()
UPGRADE = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


FRAME = masked_text(REQUEST)


def websockets_round() -> Callable[[], None]:
    from websockets.frames import Opcode
    from websockets.server import ServerProtocol

    protocol = ServerProtocol(max_size=2**25)
    protocol.receive_data(UPGRADE)
    (request,) = protocol.events_received()
    protocol.send_response(protocol.accept(request))  # type: ignore[arg-type]
    protocol.data_to_send()

    def one() -> None:
        protocol.receive_data(FRAME)
        for frame in protocol.events_received():
            if frame.opcode is Opcode.TEXT:  # type: ignore[union-attr]
                frame.data.decode()  # type: ignore[union-attr]
        protocol.send_text(REPLY.encode())
        b"".join(protocol.data_to_send())

    return one


def wsproto_round() -> Callable[[], None]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    conn = WSConnection(ConnectionType.SERVER)
    conn.receive_data(UPGRADE)
    for event in conn.events():
        if isinstance(event, Request):
            conn.send(AcceptConnection())

    def one() -> None:
        conn.receive_data(FRAME)
        for event in conn.events():
            if isinstance(event, TextMessage):
                event.data  # noqa: B018 (already text)
        conn.send(TextMessage(REPLY))

    return one


def websockets_handshake() -> Callable[[], None]:
    from websockets.server import ServerProtocol

    def one() -> None:
        protocol = ServerProtocol(max_size=2**25)
        protocol.receive_data(UPGRADE)
        (request,) = protocol.events_received()
        protocol.send_response(protocol.accept(request))  # type: ignore[arg-type]
        b"".join(protocol.data_to_send())

    return one


def wsproto_handshake() -> Callable[[], None]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    def one() -> None:
        conn = WSConnection(ConnectionType.SERVER)
        conn.receive_data(UPGRADE)
        for event in conn.events():
            if isinstance(event, Request):
                conn.send(AcceptConnection())

    return one


def measure(make: Callable[[], Callable[[], None]], rounds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        one = make()
        start = time.perf_counter()
        for _ in range(rounds):
            one()
        best = min(best, (time.perf_counter() - start) / rounds * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wslib", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for what, cases in (
        ("message round", (("websockets", websockets_round), ("wsproto", wsproto_round))),
        ("handshake", (("websockets", websockets_handshake), ("wsproto", wsproto_handshake))),
    ):
        for name, make in cases:
            rounds = args.rounds if what == "message round" else args.rounds // 10
            print(f"{what:14} {name:11} {measure(make, rounds, args.repeat):6.1f} us")


if __name__ == "__main__":
    main()
