"""One control-plane connection's rules, as a sans-IO state machine (PROTOCOL.md 2-4).

In the spirit of h11's ``Connection``: text frames and the clock go in, actions come out,
and nothing here touches a socket, a task or the wall clock. The driver
(``server/session.py``) feeds what it read and carries out what it is told::

    challenge(ts_ms)        -> [Send(connect.challenge)]
    receive(text)           -> [Authenticate] | [Send(res error), Close] | [Close]   (before hello)
                            -> [Start] | [Cancel] | [Refuse] | []                    (after hello)
    accept(hello, ...)      -> [Send(res hello-ok)]        the driver's auth decision said yes
    reject(error)           -> [Send(res error), Close]    ... or no
    expire(now)             -> [Close(1000)] once the handshake deadline has passed
    close(code, reason)     -> [Close] the first time (shutdown 1012, slow consumer 1008)

The machine owns the challenge nonce, connect-first, the pre-auth size cap, protocol
negotiation, role and scope checks, the readiness/draining refusal, the per-connection
event ``seq`` and the close rules (the first close wins; nothing is answered after it).
What it cannot know is injected: the auth decision (the driver runs it between
:class:`Authenticate` and :meth:`accept`/:meth:`reject`, so it may be asynchronous -- a
shared secret, an origin, a signed device identity), the method table (``rules``: name ->
scope and role), whether the gateway is ready or draining (``gate``) and the limits.

Errors are those of ``errors.py``: a refusal's ``res`` error is ``error.shape()`` and its
close is ``error.close_code`` / ``error.close_reason``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Protocol

import attrs

from ..errors import Forbidden, GatewayError, InvalidRequest, Unavailable
from . import validate
from .codec import Encoded, JsonRejected, dumps, from_wire, loads
from .frames import (
    MAX_PAYLOAD_BYTES,
    MAX_PREAUTH_PAYLOAD_BYTES,
    CloseCode,
    event_text,
    response_text,
    truncate_reason,
)
from .handshake import ConnectParams, check_role, negotiate_protocol
from .scopes import ADMIN, scope_allows

CHALLENGE_EVENT = "connect.challenge"
# PROTOCOL.md 2.4 (as the reference): after this many role refusals in a row the next one
# also closes the connection -- a client stuck calling what its role may not call
UNAUTHORIZED_ROLE_CLOSE_AFTER = 10
REPEATED_UNAUTHORIZED = "repeated unauthorized calls"


class Phase(enum.Enum):
    CHALLENGED = "challenged"  # challenge sent; waiting for the connect request
    AUTHENTICATING = "authenticating"  # connect is well-formed; the auth decision is pending
    OPEN = "open"  # hello-ok sent; requests flow
    CLOSING = "closing"  # our close is decided; nothing more is answered
    CLOSED = "closed"  # the peer is gone


# -- actions ---------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Send:
    """Write this text frame (queue order)."""

    text: str


@attrs.frozen(slots=True)
class Close:
    """Send the close frame after what is queued, then end the connection."""

    code: int
    reason: str


@attrs.frozen(slots=True)
class Authenticate:
    """The connect request is well-formed: decide, then call ``accept`` or ``reject``."""

    request_id: str
    params: ConnectParams


@attrs.frozen(slots=True)
class Start:
    """Run this request (authorized, not refused); its ``res`` is the driver's to send."""

    request_id: str
    method: str
    params: object


@attrs.frozen(slots=True)
class Refuse:
    """A request answered without running it (role, scope, unknown method, draining)."""

    request_id: str
    method: str
    text: str


@attrs.frozen(slots=True)
class Cancel:
    """The client cancelled an in-flight request: stop its work (no reply)."""

    request_id: str


Action = Send | Close | Authenticate | Start | Refuse | Cancel


# -- what is injected ---------------------------------------------------------------------------


class Gate(Protocol):
    """Whether the gateway takes new connections and requests (a Runtime)."""

    @property
    def ready(self) -> bool: ...
    @property
    def draining(self) -> bool: ...


class Rule(Protocol):
    """What a method requires (a registry ``Method``)."""

    @property
    def scope(self) -> str: ...
    @property
    def role(self) -> str: ...


@attrs.frozen
class Limits:
    max_preauth_bytes: int = MAX_PREAUTH_PAYLOAD_BYTES
    max_payload: int = MAX_PAYLOAD_BYTES
    handshake_timeout: float = 15.0  # seconds, on the driver's clock


def frame_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _parse(text: str) -> object:
    """The JSON value of a frame, or the :class:`JsonRejected` saying why there is none
    (``null`` is a value, not a failure)."""
    try:
        return loads(text)
    except JsonRejected as rejected:
        return rejected


def _frame_id(rejected: JsonRejected) -> str:
    """The ``id`` of a frame refused after parsing (a number out of range), else the
    literal ``"invalid"`` (PROTOCOL.md 2.4)."""
    value = rejected.value
    raw_id = value.get("id") if type(value) is dict else None
    return raw_id if isinstance(raw_id, str) and raw_id else "invalid"


class ServerConnection:
    """The server side of one control-plane connection."""

    __slots__ = (
        "_inflight",
        "close_code",
        "deadline",
        "gate",
        "last_seq",
        "limits",
        "nonce",
        "peer_close_code",
        "phase",
        "role",
        "rules",
        "scopes",
        "unauthorized_streak",
    )

    def __init__(
        self,
        *,
        nonce: str,
        rules: Mapping[str, Rule],
        gate: Gate,
        limits: Limits,
        now: float,
    ) -> None:
        self.nonce = nonce
        self.rules = rules
        self.gate = gate
        self.limits = limits
        self.phase = Phase.CHALLENGED
        self.deadline = now + limits.handshake_timeout  # for connect, on the driver's clock
        self.role = "operator"
        self.scopes: list[str] = []
        self.last_seq = 0
        self.unauthorized_streak = 0  # role refusals in a row
        self._inflight: set[str] | None = None  # made by the first request (memory)
        self.close_code: int | None = None  # ours, once decided
        self.peer_close_code: int | None = None  # the peer's, if it closed first

    @property
    def inflight(self) -> AbstractSet[str]:
        """The ids of started requests whose final ``res`` is not sent yet."""
        return self._inflight if self._inflight is not None else frozenset()

    # -- limits and sequence numbers ---------------------------------------------------------

    @property
    def max_message_bytes(self) -> int:
        """The largest inbound message allowed now: the pre-auth cap until hello-ok."""
        if self.phase is Phase.OPEN:
            return self.limits.max_payload
        return self.limits.max_preauth_bytes

    def next_seq(self) -> int:
        """The ``seq`` of the next broadcast event to this connection (1, 2, 3, ...); a
        dropped event still consumes its number, so the client sees the gap."""
        self.last_seq += 1
        return self.last_seq

    # -- the handshake ---------------------------------------------------------------------------

    def challenge(self, ts_ms: int) -> list[Action]:
        """The first frame: ``connect.challenge {nonce, ts}``, no ``seq`` (PROTOCOL.md 3.2)."""
        payload = dumps({"nonce": self.nonce, "ts": ts_ms})
        return [Send(event_text(CHALLENGE_EVENT, payload, None, None))]

    def expire(self, now: float) -> list[Action]:
        """The clock moved: no connect within the handshake timeout closes (1000, no res)."""
        if now >= self.deadline and self.phase is Phase.CHALLENGED:
            return self.close(CloseCode.NORMAL, "")
        return []

    def receive(self, text: str | None) -> list[Action]:
        """One inbound message; ``None`` when it was not valid UTF-8 (RFC 6455 8.1: the
        connection fails with 1007, before or after the handshake)."""
        phase = self.phase
        if text is None and phase in (Phase.CHALLENGED, Phase.OPEN):
            return self.close(CloseCode.INVALID_PAYLOAD, "invalid UTF-8")
        if phase is Phase.OPEN:
            return self._request(text)
        if phase is Phase.CHALLENGED:
            return self._connect(text)
        if phase is Phase.AUTHENTICATING:
            raise RuntimeError("receive() while the auth decision is pending")
        return []  # closing or closed: nothing more is answered

    def _connect(self, text: str | None) -> list[Action]:
        assert text is not None  # receive() closed on invalid UTF-8
        if frame_bytes(text) > self.limits.max_preauth_bytes:
            return self.close(CloseCode.TOO_BIG, "preauth payload too large")
        frame = _parse(text)
        if type(frame) is JsonRejected:
            if frame.syntax:
                return self.close(CloseCode.NORMAL, "")  # not JSON at all: close, no res
            if _frame_id(frame) != "invalid":  # parsed; a value in it is out of range
                error = InvalidRequest(f"invalid connect params: {frame.message}")
                return self._refuse_connect(_frame_id(frame), error)
            return self.close(CloseCode.POLICY, f"invalid request frame: {frame.message}")
        if not isinstance(frame, dict) or validate.problem("RequestFrame", frame) is not None:
            return self.close(CloseCode.POLICY, "invalid request frame")
        request_id = str(frame["id"])
        try:
            params = self._connect_params(frame)
        except GatewayError as error:
            return self._refuse_connect(request_id, error)
        self.phase = Phase.AUTHENTICATING
        return [Authenticate(request_id, params)]

    def _connect_params(self, frame: dict[str, object]) -> ConnectParams:
        if frame["method"] != "connect":
            raise InvalidRequest("invalid handshake: first request must be connect")
        raw = frame.get("params")
        raw = {} if raw is None else raw
        problem = validate.problem("ConnectParams", raw)
        if problem is not None:
            raise InvalidRequest(f"invalid connect params: {problem}")
        params = from_wire(ConnectParams, raw)
        for check in (negotiate_protocol, check_role):
            refusal = check(params)
            if refusal is not None:
                raise refusal
        gate = self.gate
        if gate.draining:
            raise Unavailable(
                "gateway draining; retry shortly",
                close_reason="gateway draining",
                retry_after_ms=1000,
            )
        if not gate.ready:
            raise Unavailable(
                "gateway starting; retry shortly",
                close_reason="gateway starting",
                details={"reason": "startup-sidecars"},  # PROTOCOL.md 2.4, 12
                retry_after_ms=500,
            )
        return params

    def accept(
        self, request_id: str, hello_payload: str, role: str, scopes: list[str]
    ) -> list[Action]:
        """The auth decision said yes: send ``res {ok:true, payload: hello-ok}`` (already
        encoded by the driver) and open for requests with this role and these scopes."""
        if self.phase is not Phase.AUTHENTICATING:
            return []  # closed meanwhile (shutdown, disconnect)
        self.phase = Phase.OPEN
        self.role = role
        self.scopes = scopes
        return [Send(response_text(request_id, True, Encoded(hello_payload)))]

    def reject(self, request_id: str, error: GatewayError) -> list[Action]:
        """The auth decision said no: the error ``res``, then the close it names."""
        if self.phase is not Phase.AUTHENTICATING:
            return []
        return self._refuse_connect(request_id, error)

    def _refuse_connect(self, request_id: str, error: GatewayError) -> list[Action]:
        actions: list[Action] = [Send(response_text(request_id, False, error=error.shape()))]
        return actions + self.close(error.close_code, error.close_reason)

    # -- after hello-ok -----------------------------------------------------------------------

    def _request(self, text: str | None) -> list[Action]:
        assert text is not None  # receive() closed on invalid UTF-8
        frame = _parse(text)
        if type(frame) is JsonRejected:
            if frame.syntax:
                return []  # not JSON at all: ignored after the handshake
            request_id = _frame_id(frame)
            error = InvalidRequest(f"invalid request frame: {frame.message}")
            return [Refuse(request_id, "", response_text(request_id, False, error=error.shape()))]
        if type(frame) is dict and frame.get("type") == "cancel":
            cancelled = frame.get("id")
            if isinstance(cancelled, str) and self._inflight and cancelled in self._inflight:
                return [Cancel(cancelled)]
            return []
        problem = validate.problem("RequestFrame", frame)
        if problem is not None or type(frame) is not dict:
            raw_id = frame.get("id") if type(frame) is dict else None
            request_id = raw_id if isinstance(raw_id, str) and raw_id else "invalid"
            error = InvalidRequest(f"invalid request frame: {problem}")
            return [Refuse(request_id, "", response_text(request_id, False, error=error.shape()))]
        request_id, name = str(frame["id"]), str(frame["method"])
        try:
            self._authorize(name)
        except GatewayError as error:
            refusal: list[Action] = [
                Refuse(request_id, name, response_text(request_id, False, error=error.shape()))
            ]
            if not error.message.startswith("unauthorized role:"):
                return refusal
            self.unauthorized_streak += 1
            if self.unauthorized_streak <= UNAUTHORIZED_ROLE_CLOSE_AFTER:
                return refusal
            return refusal + self.close(CloseCode.POLICY, REPEATED_UNAUTHORIZED)
        self.unauthorized_streak = 0
        if self._inflight is None:
            self._inflight = set()
        self._inflight.add(request_id)
        return [Start(request_id, name, frame.get("params"))]

    def _authorize(self, name: str) -> None:
        """Role -> scope -> method lookup -> draining (PROTOCOL.md 4.1); params are checked
        by the method's handler (``rpc/dispatch.py``)."""
        if name == "connect":
            raise InvalidRequest("connect is only valid as the first request")
        rule = self.rules.get(name)
        if self.role == "node":
            if rule is None or rule.role != "node":
                raise InvalidRequest("unauthorized role: node")
        elif rule is not None and rule.role == "node":
            raise InvalidRequest(f"unauthorized role: {self.role}")
        else:
            required = rule.scope if rule is not None else ADMIN  # unclassified: default-deny
            if not scope_allows(self.scopes, required):
                raise Forbidden(
                    f"missing scope: {required}",
                    details={
                        "code": "MISSING_SCOPE",
                        "missingScope": required,
                        "requiredScopes": [required],
                    },
                )
            if rule is None:
                raise InvalidRequest(f"unknown method: {name}")
        if self.gate.draining:
            raise Unavailable(
                "gateway draining for a stop or restart; retry shortly", retry_after_ms=1000
            )

    def finished(self, request_id: str) -> None:
        """A started request has sent its final ``res`` (or was cancelled)."""
        if self._inflight is not None:
            self._inflight.discard(request_id)

    # -- closing ------------------------------------------------------------------------------

    def close(self, code: int, reason: str) -> list[Action]:
        """Close with ``code``; the first close wins and later ones are no-ops."""
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return []
        self.phase = Phase.CLOSING
        self.close_code = code
        return [Close(code, truncate_reason(reason))]

    def closed_by_peer(self, code: int | None) -> None:
        """The client closed (or TCP dropped: ``None``); every in-flight request is moot."""
        if self.phase is not Phase.CLOSING:
            self.peer_close_code = code
        self.phase = Phase.CLOSED

    @property
    def open(self) -> bool:
        return self.phase is Phase.OPEN
