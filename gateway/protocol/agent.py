"""Wire types of agent runs and sessions: ``agent``, ``agent.wait``, ``agent.abort``,
``sessions.list``, ``chat.history`` and the ``agent`` event (PROTOCOL.md 7.6-7.8, 8)."""

from __future__ import annotations

from typing import Literal

import attrs

from .model import JsonObject, closed, schema

RunStatus = Literal["accepted", "ok", "error"]
WaitStatus = Literal["ok", "error", "timeout"]


# -- agent ----------------------------------------------------------------------------------


@attrs.frozen
class AgentParams:
    """Start a run. Open: clients send more optional fields (channel, thinking, ...)."""

    message: str = attrs.field(metadata=schema(min_length=1))
    idempotency_key: str = attrs.field(metadata=schema(min_length=1, max_length=256))
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    session_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    timeout: int | None = attrs.field(
        default=None, metadata=schema(minimum=1, description="seconds")
    )
    timeout_ms: int | None = attrs.field(default=None, metadata=schema(minimum=1))
    extra_system_prompt: str | None = None
    label: str | None = None
    # delivery (CHANNELS.md 5.3): where the reply goes, and whether it goes out at all
    to: str | None = None
    channel: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    reply_to: str | None = None
    reply_channel: str | None = None
    reply_account_id: str | None = None
    deliver: bool | None = None
    best_effort_deliver: bool | None = None
    thinking: str | None = None


@closed
@attrs.frozen
class ReplyPayload:
    text: str


@closed
@attrs.frozen
class Usage:
    input: int = attrs.field(metadata=schema(minimum=0))
    output: int = attrs.field(metadata=schema(minimum=0))
    total: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class AgentMeta:
    session_key: str
    provider: str
    model: str
    usage: Usage | None = None


@closed
@attrs.frozen
class RunMeta:
    duration_ms: int = attrs.field(metadata=schema(minimum=0))
    agent_meta: AgentMeta | None = None
    aborted: bool | None = None


@closed
@attrs.frozen
class AgentResult:
    payloads: list[ReplyPayload]
    meta: RunMeta
    # `deliver`: how the reply went out through its channel (CHANNELS.md 5.3)
    delivery_status: Literal["sent", "partial_failed", "failed", "suppressed", "queued"] | None = (
        None
    )


@closed
@attrs.frozen
class AgentResponse:
    """Both stages of ``agent``: the ``accepted`` ack, then ``ok``/``error`` with a summary."""

    run_id: str
    status: RunStatus
    accepted_at: int | None = None
    summary: str | None = None
    result: AgentResult | None = None


@closed
@attrs.frozen
class AgentEventPayload:
    """One step of a run. ``seq`` is per run (starts at 1), not the connection's seq."""

    run_id: str = attrs.field(metadata=schema(min_length=1))
    seq: int = attrs.field(metadata=schema(minimum=0))
    stream: str = attrs.field(metadata=schema(min_length=1))
    ts: int = attrs.field(metadata=schema(minimum=0))
    data: JsonObject
    session_key: str | None = None
    is_heartbeat: bool | None = None  # a run of the agent heartbeat (PROTOCOL.md 8)


# -- agent.wait / agent.abort ------------------------------------------------------------------


@closed
@attrs.frozen
class AgentWaitParams:
    run_id: str = attrs.field(metadata=schema(min_length=1))
    timeout_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


@closed
@attrs.frozen
class AgentWaitResult:
    run_id: str
    status: WaitStatus
    started_at: int | None = None
    ended_at: int | None = None
    error: str | None = None


@closed
@attrs.frozen
class AgentAbortParams:
    run_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    session_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@closed
@attrs.frozen
class AgentAbortResult:
    ok: bool
    aborted: bool
    run_ids: list[str]


# -- sessions.list / chat.history --------------------------------------------------------------


@closed
@attrs.frozen
class SessionsListParams:
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    limit: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=1000))


@closed
@attrs.frozen
class LastRoute:
    """Where a session last talked through a channel (CHANNELS.md 5.2): replies and
    ``deliver`` without a target go there."""

    channel: str
    account_id: str
    to: str
    thread_id: str | None = None
    reply_to_id: str | None = None


@closed
@attrs.frozen
class SessionRow:
    key: str
    agent_id: str
    updated_at: int
    age: int = attrs.field(metadata=schema(minimum=0))
    size_bytes: int = attrs.field(metadata=schema(minimum=0))
    active_run_ids: list[str] | None = None
    last_route: LastRoute | None = None


@closed
@attrs.frozen
class SessionsListResult:
    ts: int
    count: int = attrs.field(metadata=schema(minimum=0))
    sessions: list[SessionRow]


@closed
@attrs.frozen
class ChatHistoryParams:
    session_key: str = attrs.field(metadata=schema(min_length=1))
    limit: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=1000))
    offset: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    max_chars: int | None = attrs.field(default=None, metadata=schema(minimum=1))


@closed
@attrs.frozen
class ContentBlock:
    """``text`` blocks carry ``text``; ``toolCall`` blocks ``id``, ``name``, ``arguments``;
    ``image`` blocks (attachments) ``mimeType``, ``bytes``, ``fileName`` and ``omitted``
    (the image data itself is never sent back in history)."""

    type: Literal["text", "toolCall", "image"]
    text: str | None = None
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    truncated: bool | None = None
    mime_type: str | None = None
    bytes: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    file_name: str | None = None
    omitted: bool | None = None


@closed
@attrs.frozen
class AbortMeta:
    """Set on the partial reply a stopped run left behind."""

    aborted: bool
    origin: Literal["rpc", "stop-command"]
    run_id: str


@closed
@attrs.frozen
class ChatMessage:
    role: Literal["user", "assistant", "toolResult", "system"]
    content: list[ContentBlock]
    timestamp: int
    run_id: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool | None = None
    stop_reason: str | None = None
    error_message: str | None = None
    abort: AbortMeta | None = None
    label: str | None = None  # chat.inject notes
    id: str | None = None


@closed
@attrs.frozen
class SessionInfo:
    has_active_run: bool
    active_run_ids: list[str]


@closed
@attrs.frozen
class InFlightRun:
    """A run still streaming into this session: its text so far, to draw the open bubble."""

    run_id: str
    text: str


@closed
@attrs.frozen
class ChatHistoryResult:
    session_key: str
    messages: list[ChatMessage]
    has_more: bool
    session_info: SessionInfo
    next_offset: int | None = None
    in_flight_run: InFlightRun | None = None
