"""Wire types of WebChat: ``chat.send``, ``chat.abort``, ``chat.inject`` and the ``chat`` event
(PROTOCOL.md 7.8, 8; CONTROL-UI.md 6). ``chat.history`` lives beside the other session types
in :mod:`.agent`."""

from __future__ import annotations

from typing import Literal

import attrs

from .model import closed, schema

ChatState = Literal["delta", "final", "aborted", "error"]
ErrorKind = Literal["refusal", "timeout", "rate_limit", "context_length", "unknown"]
SendStatus = Literal["started", "in_flight", "ok", "error"]
QueueMode = Literal["steer", "followup", "collect", "interrupt"]


@closed
@attrs.frozen
class Attachment:
    """One file sent with a message; ``content`` is base64 (a ``data:`` URL is accepted too)."""

    content: str = attrs.field(metadata=schema(min_length=1))
    type: str | None = None
    mime_type: str | None = None
    file_name: str | None = None


@attrs.frozen
class ChatSendParams:
    """Open: WebChat clients add optional fields over time."""

    session_key: str = attrs.field(metadata=schema(min_length=1, max_length=512))
    message: str
    idempotency_key: str = attrs.field(metadata=schema(min_length=1, max_length=256))
    thinking: str | None = None
    deliver: bool | None = None
    attachments: list[Attachment] | None = None
    timeout_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    session_id: str | None = None
    queue_mode: QueueMode | None = None
    reply_to_id: str | None = None


@closed
@attrs.frozen
class ChatSendResult:
    """``{runId, status}`` for a send (``started``, or ``in_flight`` / the cached outcome for a
    repeated key); ``{ok, aborted, runIds}`` when the message was a stop command."""

    run_id: str | None = None
    status: SendStatus | None = None
    summary: str | None = None
    ok: bool | None = None
    aborted: bool | None = None
    run_ids: list[str] | None = None


@closed
@attrs.frozen
class ChatAbortParams:
    session_key: str = attrs.field(metadata=schema(min_length=1))
    run_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@closed
@attrs.frozen
class ChatAbortResult:
    ok: bool
    aborted: bool
    run_ids: list[str]


@closed
@attrs.frozen
class ChatInjectParams:
    session_key: str = attrs.field(metadata=schema(min_length=1))
    message: str = attrs.field(metadata=schema(min_length=1))
    label: str | None = attrs.field(default=None, metadata=schema(max_length=100))


@closed
@attrs.frozen
class ChatInjectResult:
    ok: bool
    message_id: str


# -- the chat event -------------------------------------------------------------------------


@closed
@attrs.frozen
class TextBlock:
    type: Literal["text"]
    text: str


@closed
@attrs.frozen
class ChatEventMessage:
    """The assistant message so far (cumulative): authoritative when present."""

    role: Literal["assistant"]
    content: list[TextBlock]
    timestamp: int


@closed
@attrs.frozen
class ChatUsage:
    input: int = attrs.field(metadata=schema(minimum=0))
    output: int = attrs.field(metadata=schema(minimum=0))
    total: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class ChatEventPayload:
    """One step of a run as WebChat sees it. ``seq`` is per run and counts chat events only
    (1, 2, 3, ... with no gaps), so a client that sees a gap knows it missed one."""

    run_id: str = attrs.field(metadata=schema(min_length=1))
    session_key: str = attrs.field(metadata=schema(min_length=1))
    seq: int = attrs.field(metadata=schema(minimum=1))
    state: ChatState
    agent_id: str | None = None
    delta_text: str | None = None
    replace: bool | None = None
    message: ChatEventMessage | None = None
    usage: ChatUsage | None = None
    stop_reason: str | None = None
    error_message: str | None = None
    error_kind: ErrorKind | None = None
