"""The connection machine (protocol/connection.py), driven back to back with the client's
handshake machine (gateway_client's ClientHandshake): no sockets, no tasks, no clock."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from gateway_client._handshake import Abandon, Accepted, ClientHandshake, Refused, SendText
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import Unauthorized
from gateway.protocol.connection import (
    Action,
    Authenticate,
    Cancel,
    Close,
    Limits,
    Phase,
    Refuse,
    Send,
    ServerConnection,
    Start,
)
from gateway.rpc.registry import methods

from .conftest import connect_frame


@attrs.define
class Gate:
    ready: bool = True
    draining: bool = False


@attrs.frozen
class Rule:
    scope: str
    role: str = "operator"


RULES = {
    "health": Rule("operator.read"),
    "agent": Rule("operator.write"),
    "system-event": Rule("operator.admin"),
    "node.invoke.result": Rule("operator.read", role="node"),
}
HELLO = json.dumps({"type": "hello-ok", "protocol": 4})


def machine(gate: Gate | None = None, **limits: Any) -> ServerConnection:
    return ServerConnection(
        nonce="nonce-1", rules=RULES, gate=gate or Gate(), limits=Limits(**limits), now=100.0
    )


def texts(actions: list[Action]) -> list[dict[str, Any]]:
    return [json.loads(a.text) for a in actions if isinstance(a, Send | Refuse)]


def closes(actions: list[Action]) -> list[Close]:
    return [a for a in actions if isinstance(a, Close)]


def client_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = connect_frame()["params"]
    params.update(overrides)
    return params


def back_to_back(
    server: ServerConnection, client: ClientHandshake
) -> tuple[list[Action], Authenticate | None]:
    """Challenge -> the client's connect -> the machine; returns what the machine did."""
    (challenge,) = server.challenge(ts_ms=1_760_000_000_000)
    assert isinstance(challenge, Send)
    (step,) = client.receive(challenge.text)
    assert isinstance(step, SendText)
    actions = server.receive(step.text)
    ask = actions[0] if actions and isinstance(actions[0], Authenticate) else None
    return actions, ask


def open_connection(scopes: list[str] | None = None, role: str = "operator") -> ServerConnection:
    server = machine()
    _, ask = back_to_back(server, ClientHandshake(client_params(role=role)))
    assert ask is not None
    server.accept(ask.request_id, HELLO, role, scopes if scopes is not None else ["operator.admin"])
    return server


# -- the handshake, back to back ---------------------------------------------------------------


def test_challenge_connect_hello_back_to_back() -> None:
    server, client = machine(), ClientHandshake(client_params(), request_id="c-1")
    _, ask = back_to_back(server, client)
    assert ask is not None
    assert ask.request_id == "c-1"
    assert ask.params.client.id == "test"
    assert ask.params.min_protocol == 4
    assert client.nonce == server.nonce == "nonce-1"
    assert server.phase is Phase.AUTHENTICATING
    (hello,) = server.accept("c-1", HELLO, "operator", ["operator.read"])
    assert isinstance(hello, Send)
    assert client.receive(hello.text) == [Accepted({"type": "hello-ok", "protocol": 4})]
    assert server.open
    assert server.scopes == ["operator.read"]
    assert server.max_message_bytes == Limits().max_payload


def test_challenge_is_an_unsequenced_event_with_nonce_and_ts() -> None:
    (challenge,) = machine().challenge(ts_ms=1234)
    assert isinstance(challenge, Send)
    assert json.loads(challenge.text) == {
        "type": "event",
        "event": "connect.challenge",
        "payload": {"nonce": "nonce-1", "ts": 1234},
    }


def test_an_auth_refusal_reaches_the_client_with_its_close() -> None:
    server, client = machine(), ClientHandshake(client_params(), request_id="c-2")
    _, ask = back_to_back(server, client)
    assert ask is not None
    error = Unauthorized("unauthorized: gateway token mismatch", details={"code": "X"})
    actions = server.reject(ask.request_id, error)
    assert closes(actions) == [Close(1008, "unauthorized: gateway token mismatch")]
    (res,) = [a for a in actions if isinstance(a, Send)]
    (refused,) = client.receive(res.text)
    assert isinstance(refused, Refused)
    assert refused.message == "unauthorized: gateway token mismatch"
    assert refused.error["code"] == "INVALID_REQUEST"
    assert refused.error["details"] == {"code": "X"}
    assert server.phase is Phase.CLOSING


def test_the_client_abandons_a_challenge_without_nonce() -> None:
    client = ClientHandshake(client_params())
    challenge = {"type": "event", "event": "connect.challenge", "payload": {"ts": 1}}
    assert client.receive(json.dumps(challenge)) == [
        Abandon(1008, "connect challenge missing nonce", "connect challenge missing nonce")
    ]


def test_the_client_skips_junk_and_other_events_before_the_challenge() -> None:
    client = ClientHandshake(client_params())
    assert client.receive("not json") == []
    assert client.receive(json.dumps({"type": "event", "event": "tick", "payload": {}})) == []
    assert client.nonce is None


@pytest.mark.parametrize(
    ("params", "code", "reason", "message"),
    [
        (
            {"minProtocol": 5, "maxProtocol": 6},
            1002,
            "protocol mismatch",
            "protocol mismatch",
        ),
        ({"role": "admin"}, 1008, "invalid role", "invalid role"),
        (
            {"client": {"id": "x"}},
            1008,
            "invalid connect params: client.version: is required",
            "invalid connect params: client.version: is required",
        ),
    ],
)
def test_connect_refusals_send_a_res_then_close(
    params: dict[str, Any], code: int, reason: str, message: str
) -> None:
    server, client = machine(), ClientHandshake(client_params(**params))
    actions, ask = back_to_back(server, client)
    assert ask is None
    assert closes(actions) == [Close(code, reason)]
    (res,) = texts(actions)
    assert res["ok"] is False
    assert res["error"]["message"] == message
    assert isinstance(client.receive(json.dumps(res))[0], Refused)


def test_protocol_mismatch_details() -> None:
    server = machine()
    actions, _ = back_to_back(server, ClientHandshake(client_params(minProtocol=1, maxProtocol=2)))
    (res,) = texts(actions)
    assert res["error"]["details"] == {
        "code": "PROTOCOL_MISMATCH",
        "clientMinProtocol": 1,
        "clientMaxProtocol": 2,
        "expectedProtocol": 4,
        "minimumProbeProtocol": 3,
    }


def test_probe_and_legacy_node_protocol_windows() -> None:
    probe = client_params(minProtocol=3, maxProtocol=3)
    probe["client"] = {**probe["client"], "mode": "probe"}
    assert back_to_back(machine(), ClientHandshake(probe))[1] is not None
    node = client_params(minProtocol=3, maxProtocol=3, role="node")
    node["client"] = {**node["client"], "mode": "node"}
    assert back_to_back(machine(), ClientHandshake(node))[1] is not None


@pytest.mark.parametrize(
    ("gate", "reason", "retry_after", "details"),
    [
        (Gate(ready=False), "gateway starting", 500, {"reason": "startup-sidecars"}),
        (Gate(draining=True), "gateway draining", 1000, None),
    ],
)
def test_not_ready_or_draining_refuses_with_1013(
    gate: Gate, reason: str, retry_after: int, details: object
) -> None:
    actions, ask = back_to_back(machine(gate), ClientHandshake(client_params()))
    assert ask is None
    assert closes(actions) == [Close(1013, reason)]
    (res,) = texts(actions)
    assert res["error"]["code"] == "UNAVAILABLE"
    assert res["error"]["retryable"] is True
    assert res["error"]["retryAfterMs"] == retry_after
    assert res["error"].get("details") == details  # PROTOCOL.md 2.4 / 12


@pytest.mark.parametrize(
    ("text", "close"),
    [
        ("{not json", Close(1000, "")),
        (None, Close(1007, "invalid UTF-8")),  # not UTF-8: RFC 6455 8.1 (issue 16)
        ('{"type":"event","event":"x"}', Close(1008, "invalid request frame")),
        ("[1, 2]", Close(1008, "invalid request frame")),
    ],
)
def test_bad_first_frames_close_without_a_res(text: str | None, close: Close) -> None:
    server = machine()
    server.challenge(1)
    assert server.receive(text) == [close]


def test_first_request_must_be_connect() -> None:
    server = machine()
    server.challenge(1)
    actions = server.receive(json.dumps({"type": "req", "id": "r1", "method": "health"}))
    message = "invalid handshake: first request must be connect"
    assert closes(actions) == [Close(1008, message)]
    assert texts(actions)[0]["error"]["message"] == message


def test_preauth_cap_closes_1009_before_parsing() -> None:
    server = machine(max_preauth_bytes=100)
    assert server.max_message_bytes == 100
    server.challenge(1)
    assert server.receive("x" * 101) == [Close(1009, "preauth payload too large")]
    # multi-byte text counts in bytes, not characters
    other = machine(max_preauth_bytes=100)
    assert other.receive("é" * 51) == [Close(1009, "preauth payload too large")]


def test_long_close_reasons_are_cut_to_123_bytes() -> None:
    server = machine()
    (close,) = server.close(1008, "ü" * 100)
    assert isinstance(close, Close)
    assert len(close.reason.encode()) <= 123
    assert close.reason == "ü" * 61


def test_no_connect_before_the_deadline_closes_normally() -> None:
    server = machine(handshake_timeout=10.0)
    assert server.deadline == 110.0
    assert server.expire(109.9) == []
    assert server.expire(110.0) == [Close(1000, "")]
    assert server.expire(111.0) == []  # already closing


def test_the_deadline_does_not_apply_once_open() -> None:
    server = open_connection()
    assert server.expire(10_000.0) == []


def test_receive_during_the_auth_decision_is_a_driver_bug() -> None:
    server = machine()
    back_to_back(server, ClientHandshake(client_params()))
    with pytest.raises(RuntimeError):
        server.receive("{}")


def test_accept_or_reject_after_a_close_does_nothing() -> None:
    server = machine()
    _, ask = back_to_back(server, ClientHandshake(client_params()))
    assert ask is not None
    server.close(1012, "service restart")
    assert server.accept(ask.request_id, HELLO, "operator", []) == []
    assert server.reject(ask.request_id, Unauthorized("no")) == []
    assert not server.open


# -- after hello-ok ------------------------------------------------------------------------------


def req(request_id: str, method: str, **extra: Any) -> str:
    return json.dumps({"type": "req", "id": request_id, "method": method, **extra})


def test_an_authorized_request_starts() -> None:
    server = open_connection(["operator.read"])
    assert server.receive(req("r1", "health", params={"probe": True})) == [
        Start("r1", "health", {"probe": True})
    ]
    assert server.inflight == {"r1"}
    server.finished("r1")
    assert server.inflight == set()


def refusal(actions: list[Action]) -> dict[str, Any]:
    (action,) = actions
    assert isinstance(action, Refuse)
    res: dict[str, Any] = json.loads(action.text)
    assert res["type"] == "res"
    assert res["ok"] is False
    assert res["id"] == action.request_id
    error: dict[str, Any] = res["error"]
    return error


def test_missing_scope_is_forbidden_with_details() -> None:
    server = open_connection(["operator.read"])
    error = refusal(server.receive(req("r1", "agent")))
    assert error == {
        "code": "FORBIDDEN",
        "message": "missing scope: operator.write",
        "details": {
            "code": "MISSING_SCOPE",
            "missingScope": "operator.write",
            "requiredScopes": ["operator.write"],
        },
    }
    assert server.receive(req("r2", "health")) == [Start("r2", "health", None)]
    write = open_connection(["operator.write"])  # write satisfies read
    assert write.receive(req("r3", "health")) == [Start("r3", "health", None)]


def test_unknown_methods_are_admin_only_then_unknown() -> None:
    reader = open_connection(["operator.read"])
    assert refusal(reader.receive(req("r1", "nope")))["message"] == "missing scope: operator.admin"
    admin = open_connection(["operator.admin"])
    assert refusal(admin.receive(req("r1", "nope")))["message"] == "unknown method: nope"


def test_roles_keep_to_their_methods() -> None:
    node = open_connection([], role="node")
    assert refusal(node.receive(req("r1", "health")))["message"] == "unauthorized role: node"
    assert node.receive(req("r2", "node.invoke.result")) == [
        Start("r2", "node.invoke.result", None)
    ]
    operator = open_connection()
    message = refusal(operator.receive(req("r3", "node.invoke.result")))["message"]
    assert message == "unauthorized role: operator"


def test_repeated_role_refusals_close_the_connection() -> None:
    """PROTOCOL.md 2.4: a flood of unauthorized-role calls ends with 1008 "repeated
    unauthorized calls" (the 11th in a row, after its res); an allowed call resets the count
    and other refusals (scope, unknown method) do not count."""
    node = open_connection([], role="node")
    for i in range(10):
        assert closes(node.receive(req(f"a{i}", "health"))) == []
    assert node.receive(req("ok", "node.invoke.result")) == [
        Start("ok", "node.invoke.result", None)
    ]
    for i in range(10):
        assert closes(node.receive(req(f"b{i}", "status"))) == []
    last = node.receive(req("b10", "status"))
    assert refusal(last[:1])["message"] == "unauthorized role: node"  # still answered
    assert closes(last) == [Close(1008, "repeated unauthorized calls")]
    assert node.receive(req("after", "node.invoke.result")) == []  # nothing after the close
    reader = open_connection(["operator.read"])
    for i in range(20):
        assert closes(reader.receive(req(f"s{i}", "system-event"))) == []


def test_draining_refuses_new_requests_as_retryable() -> None:
    gate = Gate()
    server = machine(gate)
    _, ask = back_to_back(server, ClientHandshake(client_params()))
    assert ask is not None
    server.accept(ask.request_id, HELLO, "operator", ["operator.admin"])
    gate.draining = True
    error = refusal(server.receive(req("r1", "health")))
    assert error["code"] == "UNAVAILABLE"
    assert error["retryable"] is True
    assert error["retryAfterMs"] == 1000


def test_a_second_connect_is_refused_and_the_connection_kept() -> None:
    server = open_connection()
    error = refusal(server.receive(req("r1", "connect", params={})))
    assert error["message"] == "connect is only valid as the first request"
    assert server.open


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        ({"type": "req", "id": "x"}, "x"),
        ({"type": "req", "id": "", "method": "health"}, "invalid"),
        ([1, 2], "invalid"),
        ("req", "invalid"),
    ],
)
def test_invalid_frames_after_hello_get_an_invalid_request_res(
    frame: object, request_id: str
) -> None:
    server = open_connection()
    (action,) = server.receive(json.dumps(frame))
    assert isinstance(action, Refuse)
    assert action.request_id == request_id
    assert refusal([action])["message"].startswith("invalid request frame: ")


def test_non_json_after_hello_is_ignored() -> None:
    server = open_connection()
    assert server.receive("{nope") == []
    assert server.open


def test_invalid_utf8_after_hello_closes_1007() -> None:
    """Issue 16 (low): a text message that is not UTF-8 fails the connection with 1007
    (RFC 6455 8.1), not a silent drop or a bare TCP close."""
    server = open_connection()
    assert server.receive(None) == [Close(1007, "invalid UTF-8")]


LONE_SURROGATE_CONNECT = (
    '{"type":"req","id":"c1","method":"connect","params":{"minProtocol":4,"maxProtocol":4,'
    '"client":{"id":"cli","displayName":"\\ud800","version":"1","platform":"x","mode":"node"}}}'
)


def test_a_lone_surrogate_in_connect_is_refused_before_auth() -> None:
    """Issue 16 (high 1): a lone surrogate never reaches presence: the connect is refused
    with 1008 and a reason that names the problem."""
    server = machine()
    server.challenge(1)
    assert "\\ud800" in LONE_SURROGATE_CONNECT
    (close,) = server.receive(LONE_SURROGATE_CONNECT)
    assert isinstance(close, Close)
    assert close.code == 1008
    assert close.reason.startswith(
        "invalid request frame: a string holds a lone UTF-16 surrogate (line 1 column "
    )
    assert server.phase is Phase.CLOSING


def test_deep_json_before_auth_closes_1008_without_a_traceback() -> None:
    """Issue 16 (medium 4): 2 KB of nesting before login is refused cleanly."""
    server = machine()
    server.challenge(1)
    (close,) = server.receive("[" * 1100 + "]" * 1100)
    assert close == Close(1008, "invalid request frame: nested deeper than 128 levels")


def test_an_unsafe_number_in_connect_params_is_named() -> None:
    server = machine()
    server.challenge(1)
    frame = connect_frame()
    frame["params"]["maxProtocol"] = 2**60
    actions = server.receive(json.dumps(frame))
    (res,) = texts(actions)
    assert closes(actions)[0].code == 1008
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"] == (
        "invalid connect params: params.maxProtocol: number out of range "
        "(1152921504606846976; numbers must be within +-9007199254740991)"
    )


@pytest.mark.parametrize(
    ("text", "expected_id", "problem"),
    [
        (
            '{"type":"req","id":"r1","method":"health","params":{"x":"\\udc00"}}',
            "invalid",
            "a string holds a lone UTF-16 surrogate",
        ),
        (
            '{"type":"req","id":"r2","method":"health","params":' + "[" * 200 + "]" * 200 + "}",
            "r2",
            "nested deeper than 128 levels",
        ),
        (
            '{"type":"req","id":"r3","method":"health","params":{"n":[1e300]}}',
            "r3",
            "params.n.0: number out of range",
        ),
        (
            '{"type":"req","id":"r4","method":"health","params":{"n":-9007199254740992}}',
            "r4",
            "params.n: number out of range",
        ),
    ],
)
def test_rejected_json_after_hello_is_an_invalid_request(
    text: str, expected_id: str, problem: str
) -> None:
    """Issue 16: INVALID_REQUEST naming the problem; the connection stays open."""
    server = open_connection()
    (action,) = server.receive(text)
    assert isinstance(action, Refuse)
    assert action.request_id == expected_id
    error = refusal([action])
    assert error["code"] == "INVALID_REQUEST"
    assert error["message"].startswith(f"invalid request frame: {problem}")
    assert server.open


def test_cancel_reaches_only_an_inflight_request() -> None:
    server = open_connection()
    server.receive(req("r1", "health"))
    cancel = json.dumps({"type": "cancel", "id": "r1"})
    assert server.receive(cancel) == [Cancel("r1")]
    assert server.receive(json.dumps({"type": "cancel", "id": "other"})) == []
    server.finished("r1")
    assert server.receive(cancel) == []


def test_event_seq_is_per_connection_and_consecutive() -> None:
    one, two = open_connection(), open_connection()
    assert [one.next_seq() for _ in range(3)] == [1, 2, 3]
    assert two.next_seq() == 1


def test_the_first_close_wins_and_nothing_is_answered_after_it() -> None:
    server = open_connection()
    assert server.close(1008, "slow consumer") == [Close(1008, "slow consumer")]
    assert server.close(1012, "service restart") == []
    assert server.close_code == 1008
    assert server.receive(req("r1", "health")) == []
    server.closed_by_peer(1000)
    assert server.phase is Phase.CLOSED
    assert server.peer_close_code is None


def test_a_peer_close_is_recorded() -> None:
    server = open_connection()
    server.closed_by_peer(1001)
    assert server.peer_close_code == 1001
    assert server.receive(req("r1", "health")) == []


def test_the_registry_satisfies_the_rule_protocol() -> None:
    rules = methods()
    server = ServerConnection(nonce="n", rules=rules, gate=Gate(), limits=Limits(), now=0.0)
    _, ask = back_to_back(server, ClientHandshake(client_params()))
    assert ask is not None
    server.accept(ask.request_id, HELLO, "operator", ["operator.read"])
    assert server.receive(req("r1", "health")) == [Start("r1", "health", None)]


# -- whatever arrives, the rules hold -----------------------------------------------------------

FRAMES = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.builds(
        lambda i, m, p: req(i, m, params=p),
        st.sampled_from(["a", "b", ""]),
        st.sampled_from(["connect", "health", "agent", "nope", "node.invoke.result"]),
        st.one_of(st.none(), st.just({}), st.integers()),
    ),
    st.builds(lambda i: json.dumps({"type": "cancel", "id": i}), st.sampled_from(["a", "b"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAMES, max_size=12), st.sampled_from(["accept", "reject"]))
def test_no_request_runs_before_hello_and_nothing_after_a_close(
    frames: list[str | None], decision: str
) -> None:
    server = machine()
    server.challenge(1)
    started_before_open = False
    for text in frames:
        was_open, was_closing = server.open, server.phase is Phase.CLOSING
        actions = server.receive(text)
        if not was_open and any(isinstance(a, Start | Refuse | Cancel) for a in actions):
            started_before_open = True
        if was_closing:
            assert actions == []
        assert len(closes(actions)) <= 1
        ask = next((a for a in actions if isinstance(a, Authenticate)), None)
        if ask is not None:
            if decision == "accept":
                server.accept(ask.request_id, HELLO, "operator", ["operator.read"])
            else:
                server.reject(ask.request_id, Unauthorized("no"))
    assert not started_before_open
    assert server.phase is not Phase.AUTHENTICATING


# -- the PROTOCOL.md 2.4 / 3.7 matrices (one end-to-end case each stays in test_handshake.py) --


def first_frame_actions(frame: object) -> list[Action]:
    server = machine()
    server.challenge(1)
    return server.receive(json.dumps(frame))


def with_client(mode: str, **params: Any) -> dict[str, Any]:
    base = client_params(**params)
    base["client"] = {**base["client"], "mode": mode}
    return base


@pytest.mark.parametrize(
    ("low", "high", "mode", "role"),
    [
        (5, 5, "test", "operator"),
        (2, 2, "test", "operator"),
        (3, 3, "test", "operator"),  # 3 is only for probes and legacy nodes
        (3, 3, "test", "node"),  # node role but not node mode: no legacy window
        (2, 2, "probe", "operator"),
        (1, 2, "node", "node"),
    ],
)
def test_protocol_ranges_without_4_are_a_mismatch(
    low: int, high: int, mode: str, role: str
) -> None:
    params = with_client(mode, minProtocol=low, maxProtocol=high, role=role)
    actions, ask = back_to_back(machine(), ClientHandshake(params))
    assert ask is None
    assert closes(actions) == [Close(1002, "protocol mismatch")]
    error = texts(actions)[0]["error"]
    assert error["details"]["clientMinProtocol"] == low
    assert error["details"]["clientMaxProtocol"] == high


@pytest.mark.parametrize(
    ("low", "high", "mode", "role"),
    [
        (3, 4, "test", "operator"),
        (4, 9, "test", "operator"),
        (3, 4, "probe", "operator"),
        (3, 3, "probe", "operator"),
        (3, 3, "node", "node"),
    ],
)
def test_protocol_windows_are_accepted(low: int, high: int, mode: str, role: str) -> None:
    params = with_client(mode, minProtocol=low, maxProtocol=high, role=role)
    _, ask = back_to_back(machine(), ClientHandshake(params))
    assert ask is not None
    assert ask.params.role == role


def _without(path: str) -> dict[str, Any]:
    params = client_params()
    head, _, leaf = path.rpartition(".")
    (params[head] if head else params).pop(leaf)
    return params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (_without("client.version"), "client.version"),
        ({**client_params(), "minProtocol": "4"}, "minProtocol"),
        (_without("client"), "client"),
        (
            with_client("test") | {"client": {**client_params()["client"], "platform": ""}},
            "client.platform",
        ),
        (_without("maxProtocol"), "maxProtocol"),
    ],
)
def test_connect_params_failing_the_schema_name_the_field(
    params: dict[str, Any], field: str
) -> None:
    actions, ask = back_to_back(machine(), ClientHandshake(params))
    assert ask is None
    message = texts(actions)[0]["error"]["message"]
    assert message.startswith(f"invalid connect params: {field}"), message
    assert closes(actions) == [Close(1008, message[:123])]


def test_connect_without_params_fails_the_schema() -> None:
    actions = first_frame_actions({"type": "req", "id": "np", "method": "connect"})
    assert texts(actions)[0]["error"]["message"].startswith("invalid connect params: ")
    assert closes(actions)[0].code == 1008


@pytest.mark.parametrize("role", ["bogus", "admin", "worker", ""])
def test_roles_other_than_operator_and_node_are_refused(role: str) -> None:
    actions, ask = back_to_back(machine(), ClientHandshake(client_params(role=role)))
    assert ask is None
    assert texts(actions)[0]["error"]["message"] == "invalid role"
    assert closes(actions) == [Close(1008, "invalid role")]


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "event", "event": "x"},
        {"type": "res", "id": "r1", "ok": True},
        {"type": "req", "method": "connect", "params": {}},
        {"type": "req", "id": "", "method": "connect"},
        {"type": "req", "id": "r2", "method": ""},
        {"type": "req", "id": 7, "method": "connect"},
        [1, 2, 3],
        "connect",
        42,
    ],
)
def test_first_frames_that_are_no_request_close_1008(frame: object) -> None:
    assert first_frame_actions(frame) == [Close(1008, "invalid request frame")]


@pytest.mark.parametrize("text", ["{not json", "", "\u00ff\u00fe garbage"])
def test_unparseable_first_frames_close_1000(text: str) -> None:
    server = machine()
    server.challenge(1)
    assert server.receive(text) == [Close(1000, "")]


@pytest.mark.parametrize(
    ("frame", "expected_id"),
    [
        ({"type": "event", "id": "ev-1", "event": "x"}, "ev-1"),
        ({"type": "res", "id": "res-1", "ok": True}, "res-1"),
        ({"type": "req", "id": "no-method"}, "no-method"),
        ({"type": "req", "id": "empty-method", "method": ""}, "empty-method"),
        ({"type": "req", "id": "num-method", "method": 5}, "num-method"),
        ({"type": "req", "id": "tp", "method": "health", "traceparent": "t" * 129}, "tp"),
        ({"type": "req", "method": "health"}, "invalid"),
        ({"type": "req", "id": 12, "method": "health"}, "invalid"),
        ({"id": "no-type", "method": "health"}, "no-type"),
        (None, "invalid"),
    ],
)
def test_invalid_frames_after_hello_name_their_id(frame: object, expected_id: str) -> None:
    server = open_connection()
    (action,) = server.receive(json.dumps(frame))
    assert isinstance(action, Refuse)
    assert action.request_id == expected_id
    assert refusal([action])["message"].startswith("invalid request frame: ")
    assert server.open


@pytest.mark.parametrize(
    "scopes", [["operator.pairing"], ["operator.approvals"], ["operator.talk"], ["bogus.scope"]]
)
def test_other_scopes_do_not_grant_read(scopes: list[str]) -> None:
    server = open_connection(scopes)
    assert refusal(server.receive(req("r1", "health")))["message"] == "missing scope: operator.read"
