"""Frames, error shapes and close codes of protocol 4 (PROTOCOL.md sections 2 and 5)."""

from __future__ import annotations

from typing import Literal

import attrs

from .codec import Encoded, dumps, to_wire
from .codes import CloseCode as CloseCode  # re-exported: the wire codes live in codes.py
from .codes import ErrorCode as ErrorCode
from .model import closed, schema

PROTOCOL_VERSION = 4
MIN_CLIENT_PROTOCOL = 4
MIN_NODE_PROTOCOL = 3
MIN_PROBE_PROTOCOL = 3

MAX_PREAUTH_PAYLOAD_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024
MAX_BUFFERED_BYTES = 50 * 1024 * 1024
TICK_INTERVAL_MS = 30_000
HANDSHAKE_TIMEOUT_MS = 15_000
HEALTH_REFRESH_INTERVAL_MS = 60_000
MAX_CLOSE_REASON_BYTES = 123


@closed
@attrs.frozen
class ErrorShape:
    code: str = attrs.field(metadata=schema(min_length=1))
    message: str = attrs.field(metadata=schema(min_length=1))
    details: object | None = None
    retryable: bool | None = None
    retry_after_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


@attrs.frozen
class RequestFrame:
    """Client -> server. Unknown extra keys are tolerated (newer clients add fields)."""

    type: Literal["req"]
    id: str = attrs.field(metadata=schema(min_length=1))
    method: str = attrs.field(metadata=schema(min_length=1))
    params: object | None = None
    traceparent: str | None = attrs.field(default=None, metadata=schema(max_length=128))


@attrs.frozen
class CancelFrame:
    type: Literal["cancel"]
    id: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class ResponseFrame:
    type: Literal["res"]
    id: str = attrs.field(metadata=schema(min_length=1))
    ok: bool
    payload: object | None = None
    error: ErrorShape | None = None


@closed
@attrs.frozen
class StateVersion:
    presence: int = attrs.field(metadata=schema(minimum=0))
    health: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class EventFrame:
    type: Literal["event"]
    event: str = attrs.field(metadata=schema(min_length=1))
    payload: object | None = None
    seq: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    state_version: StateVersion | None = None


def truncate_reason(reason: str, limit: int = MAX_CLOSE_REASON_BYTES) -> str:
    """Cut a close reason to the WebSocket limit on a code-point boundary."""
    encoded = reason.encode()
    if len(encoded) <= limit:
        return reason
    return encoded[:limit].decode(errors="ignore")


def response_text(
    request_id: str, ok: bool, payload: object = None, error: ErrorShape | None = None
) -> str:
    """The ``res`` frame as text. It always starts ``{"type":"res","id":...,"ok":...``
    (``observe.response_outcome`` relies on that). An :class:`Encoded` payload is spliced in
    as it is."""
    parts = ['{"type":"res","id":', dumps(request_id), ',"ok":true' if ok else ',"ok":false']
    if ok or payload is not None:
        parts += [
            ',"payload":',
            payload.text if isinstance(payload, Encoded) else dumps(to_wire(payload)),
        ]
    if error is not None:
        parts += [',"error":', dumps(to_wire(error))]
    parts.append("}")
    return "".join(parts)


def event_text(name: str, payload_json: str, seq: int | None, state_version: str | None) -> str:
    """An ``event`` frame as text around an already encoded payload."""
    parts = ['{"type":"event","event":', dumps(name), ',"payload":', payload_json]
    if seq is not None:
        parts += [',"seq":', str(seq)]
    if state_version is not None:
        parts += [',"stateVersion":', state_version]
    parts.append("}")
    return "".join(parts)
