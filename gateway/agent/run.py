"""One agent run's state: identity, per-run event ``seq``, streamed text, outcome (no I/O).

A run is created accepted, then ends exactly once (:meth:`Run.end`) as ``ok``, ``error``,
``timeout``, ``aborted`` or ``interrupted``. ``done`` fires after the end is recorded;
``changed`` is re-armed on every event so HTTP streamers can follow the text without a queue
of their own (they read ``text`` from where they left off: a slow reader loses nothing).
"""

from __future__ import annotations

from typing import Literal

import attrs
import trio

from ..protocol.agent import AgentMeta, AgentResponse, AgentResult, ReplyPayload, RunMeta, Usage
from ..protocol.frames import ErrorCode, ErrorShape
from .agents import AgentSpec
from .chatstream import ChatStream
from .providers.base import TokenUsage

EndStatus = Literal["ok", "error", "timeout", "aborted", "interrupted"]
DeliveryStatusName = Literal["sent", "partial_failed", "failed", "suppressed", "queued"]
StopOrigin = Literal["rpc", "stop-command"]


@attrs.define(eq=False)
class Run:
    run_id: str
    agent: AgentSpec
    session_key: str
    rest: str  # the session key after "agent:<id>:", i.e. the transcript's name
    message: str
    accepted_at: int  # wall ms
    started: float  # trio clock
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    changed: trio.Event = attrs.field(factory=trio.Event)
    seq: int = 0
    text: str = ""
    payloads: list[str] = attrs.field(factory=list)
    provider: str = ""
    model: str = ""
    usage: TokenUsage = attrs.field(factory=TokenUsage)
    status: Literal["running"] | EndStatus = "running"
    summary: str = ""
    error: ErrorShape | None = None
    ended_at: int | None = None
    # set by abort()/interrupt() just before the scope is cancelled: how and why it stopped
    stop_status: EndStatus | None = None
    stop_reason: str | None = None
    stop_origin: StopOrigin = "rpc"
    # the `chat` events of this run (set by AgentService.start)
    chat: ChatStream | None = None
    # `deliver`: the reply's way out through a channel (channels/agent_delivery.py)
    delivery_started: bool = False
    delivered: trio.Event = attrs.field(factory=trio.Event)
    delivery_status: DeliveryStatusName | None = None
    is_heartbeat: bool = False  # started by the heartbeat: its agent events say so

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def stop(self, status: EndStatus, reason: str, origin: StopOrigin = "rpc") -> bool:
        """Cancel the run, recording why; ``False`` if it already ended or is stopping."""
        if self.status != "running" or self.stop_status is not None:
            return False
        self.stop_status, self.stop_reason, self.stop_origin = status, reason, origin
        self.scope.cancel()
        return True

    def touch(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def ack(self) -> AgentResponse:
        return AgentResponse(self.run_id, "accepted", accepted_at=self.accepted_at)

    def end(self, status: EndStatus, summary: str, now_ms: int, code: str | None = None) -> None:
        if self.status != "running":
            return
        self.status = status
        self.summary = summary
        self.ended_at = now_ms
        if status != "ok":
            retryable = True if status == "interrupted" else None
            error_code = code or (
                ErrorCode.AGENT_TIMEOUT if status == "timeout" else ErrorCode.UNAVAILABLE
            )
            self.error = ErrorShape(error_code, summary, retryable=retryable)

    def response(self) -> AgentResponse:
        """The final ``res`` payload (for ``ok:false`` it travels beside ``error``)."""
        if self.status == "running":
            return self.ack()
        if self.status != "ok":
            return AgentResponse(self.run_id, "error", summary=self.summary)
        return AgentResponse(self.run_id, "ok", summary="completed", result=self.result())

    def result(self) -> AgentResult:
        duration = max(0, (self.ended_at or self.accepted_at) - self.accepted_at)
        usage = Usage(self.usage.input, self.usage.output, self.usage.input + self.usage.output)
        meta = AgentMeta(self.session_key, self.provider, self.model, usage)
        return AgentResult(
            [ReplyPayload(p) for p in self.payloads],
            RunMeta(duration, meta),
            delivery_status=self.delivery_status,
        )

    @property
    def reply_text(self) -> str:
        return "\n\n".join(self.payloads)
