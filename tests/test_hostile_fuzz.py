"""Property-based hostile input (issue 16): frames before and after the handshake, and every
method's params drawn from the JSON Schemas in ``schemas/``, against the connection machine
and against a real gateway over real sockets.

Seeded (``derandomize``) and bounded so the suite stays fast; ``nox -s fuzz`` runs the same
generators for 100,000+ frames (``tests/fuzz_campaign.py``). What must hold, whatever comes
in: nothing raises out of the machine; every request gets a ``res`` with its id and a coded
error or a result; no handler fails with a traceback; close codes are the protocol's; the
gateway keeps answering other clients and leaks no connection.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from gateway.app import Running, serve
from gateway.protocol.connection import (
    Authenticate,
    Cancel,
    Close,
    Limits,
    Refuse,
    Send,
    ServerConnection,
    Start,
)
from gateway.rpc.registry import methods

from .conftest import connect_frame, handshake, make_settings, open_raw, recv_json
from .fuzzgen import encode, frame_text, request_frame

CLOSE_CODES = {1000, 1002, 1007, 1008, 1009, 1013}
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Gate:
    ready = True
    draining = False


def _machine() -> ServerConnection:
    return ServerConnection(nonce="n", rules=methods(), gate=_Gate(), limits=Limits(), now=0.0)


@FUZZ
@given(frame_text())
def test_no_first_frame_breaks_the_machine(text: str) -> None:
    server = _machine()
    server.challenge(1)
    actions = server.receive(text)
    assert actions, text[:200]
    for action in actions:
        assert isinstance(action, Send | Close | Authenticate), action
        if isinstance(action, Close):
            assert action.code in CLOSE_CODES
        if isinstance(action, Send):
            assert json.loads(action.text)["ok"] is False


@FUZZ
@given(st.lists(frame_text(), min_size=1, max_size=4))
def test_no_frame_after_hello_breaks_the_machine(texts: list[str]) -> None:
    server = _machine()
    server.challenge(1)
    (ask,) = server.receive(json.dumps(connect_frame()))
    assert isinstance(ask, Authenticate)
    server.accept(ask.request_id, "{}", "operator", ["operator.admin"])
    for text in texts:
        for action in server.receive(text):
            assert isinstance(action, Start | Refuse | Cancel), action
            if isinstance(action, Refuse):
                res = json.loads(action.text)
                assert res["ok"] is False
                assert res["error"]["code"]
                assert res["error"]["message"]
            if isinstance(action, Start):
                server.finished(action.request_id)
        assert server.open


# -- a real gateway -------------------------------------------------------------------------


class _Tracebacks(logging.Handler):
    """Every log record that carries a traceback: a handler that failed on its input."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, _Tracebacks]]:
    """One gateway for the module, in its own thread (the tests are synchronous: hypothesis
    drives them), with a handler that collects tracebacks."""
    tracebacks = _Tracebacks()
    logging.getLogger("gateway").addHandler(tracebacks)
    state: Path = tmp_path_factory.mktemp("fuzz")
    found: list[tuple[Running, trio.lowlevel.TrioToken]] = []
    ready = threading.Event()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve, make_settings(state))
            found.append((running, trio.lowlevel.current_trio_token()))
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(30)
    running, token = found[0]
    try:
        yield running, tracebacks
    finally:
        trio.from_thread.run_sync(running.stop, trio_token=token)
        thread.join(30)
        logging.getLogger("gateway").removeHandler(tracebacks)


@pytest.fixture(scope="module")
def admin(live: tuple[Running, _Tracebacks]) -> Iterator[Any]:
    running, _ = live
    with open_raw(running.url, max_size=None) as ws:
        assert handshake(ws)["ok"] is True
        yield ws


def _answer(ws: Any, request_id: str) -> dict[str, Any]:
    while True:
        frame = recv_json(ws, timeout=20)
        if frame.get("type") == "res" and frame.get("id") == request_id:
            return frame


@FUZZ
@given(request_frame())
def test_every_method_answers_any_params(
    live: tuple[Running, _Tracebacks], admin: Any, frame: dict[str, Any]
) -> None:
    """Params drawn from each method's schema, bent or not: a ``res`` with the request's
    id, ``ok`` or a coded error, and never a handler traceback."""
    _, tracebacks = live
    admin.send(encode(frame))
    res = _answer(admin, frame["id"])
    assert isinstance(res["ok"], bool)
    if not res["ok"]:
        error = res["error"]
        assert error["code"], res
        assert error["message"], res
    assert tracebacks.seen == []


@FUZZ
@given(frame_text())
def test_frames_before_and_after_the_handshake_on_a_live_gateway(
    live: tuple[Running, _Tracebacks], admin: Any, text: str
) -> None:
    """The same frame before connect (a fresh socket) and after it (the admin session):
    the protocol's close codes or answers; the admin session and new clients unharmed."""
    running, tracebacks = live
    with open_raw(running.url) as ws:
        recv_json(ws)  # the challenge
        ws.send(text)
        code = _read_until_closed(ws)
    assert code is None or code in CLOSE_CODES
    admin.send(text)
    probe = str(uuid.uuid4())
    admin.send(json.dumps({"type": "req", "id": probe, "method": "health"}))
    assert _answer(admin, probe)["ok"] is True
    assert tracebacks.seen == []


def _read_until_closed(ws: Any) -> int | None:
    """Read answers until the gateway closes; its close code (``None``: still open after
    10 s -- a frame it accepted -- or closed without a code)."""
    try:
        while True:
            frame = recv_json(ws, timeout=10)
            assert frame.get("type") in ("res", "event")
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        return None


def test_after_the_campaign_nothing_leaked(live: tuple[Running, _Tracebacks]) -> None:
    """Runs after the fuzz tests in this module: their sockets are gone from the gateway
    (the admin session's aside), and a new client still gets in."""
    running, tracebacks = live
    with open_raw(running.url) as ws:
        assert handshake(ws)["ok"] is True
    token_open = len(running.streams)
    assert token_open <= 2, token_open
    assert tracebacks.seen == []
