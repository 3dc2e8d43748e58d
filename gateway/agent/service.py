"""AgentService: starts, finds, aborts, waits for and drains the gateway's agent runs.

One per ``Runtime``. Every run is a task in ``Runtime.nursery`` (the server's nursery, not
the request's), inside its own cancel scope whose deadline is the run's timeout, so a run
outlives the WebSocket or HTTP request that started it only as long as the caller wants
(HTTP aborts on disconnect; a WebSocket client may come back and ``agent.wait``).

Idempotency: ``runId`` is the caller's ``idempotencyKey``. A key that names a running run
joins it; a key of a run that ended in the last 5 minutes gets that outcome again
(:mod:`dedupe`); only an unknown key starts a run.

Stop/restart: :meth:`drain` (a ``Runtime.drain_hooks`` entry) refuses new runs, lets the
running ones finish within ``gateway.drainTimeoutMs``, then interrupts the rest -- each
writes what it had and an ``interrupted`` record to its transcript before the nursery is
cancelled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from ..auth import READ
from ..errors import InvalidRequest, ModelConfigError, SessionKeyError, Unavailable
from ..protocol import events as ev
from ..protocol.agent import AgentEventPayload
from ..protocol.chat import ChatEventPayload
from .agents import AgentSpec, agent_specs, default_agent_id
from .attachments import Part
from .chatstream import ChatStream
from .dedupe import IdempotencyCache
from .execute import execute
from .keys import normalize_agent_id, parse_session_key, session_key
from .providers.base import Message
from .run import Run, StopOrigin
from .store import SessionStore
from .sysevents import with_events

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("gateway.agent")

MAX_ACTIVE_RUNS = 64
INTERRUPT_BUDGET_S = 5.0  # after the drain budget: how long interrupted runs get to save


@attrs.frozen
class RunRequest:
    run_id: str
    message: str
    agent_id: str | None = None
    session_key: str | None = None
    timeout_s: float | None = None
    extra_system_prompt: str | None = None
    # OpenAI-style callers send the conversation themselves: it replaces the stored history
    prelude: tuple[Message, ...] | None = None
    # files sent with the message (chat.send), already decoded and checked
    attachments: tuple[Part, ...] = ()
    # chat.send / agent `deliver`: send the reply out through the session's channel route
    deliver: bool = False
    # the agent heartbeat's turn: `isHeartbeat` on its agent events
    is_heartbeat: bool = False


def invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message)


TOOL_EVENTS = "tool-events"


class AgentService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.active: dict[str, Run] = {}
        self.ended: IdempotencyCache[Run] = IdempotencyCache()
        self.store = SessionStore()
        self.accepting = True
        self._idle = trio.Event()
        self._idle.set()
        self._started = trio.Event()  # set (and replaced) whenever a run starts

    def now_ms(self) -> int:
        return self.rt.now_ms()

    # -- resolving agents and sessions (config is read fresh every time: hot reload) -------

    def agents(self) -> list[AgentSpec]:
        try:
            return agent_specs(self.rt.settings.config, self.rt.settings.paths.state_dir)
        except ModelConfigError as exc:
            raise ModelConfigError(f"invalid agents config: {exc}") from None

    def default_agent(self) -> str:
        return default_agent_id(self.rt.settings.config)

    def resolve(self, agent_id: str | None, key: str | None) -> tuple[AgentSpec, str]:
        """``(agent, rest of the session key)``; ``INVALID_REQUEST`` naming the problem."""
        try:
            wanted = normalize_agent_id(agent_id) if agent_id else None
            default = wanted or self.default_agent()
            key_agent, rest = parse_session_key(key, default) if key else (default, "main")
        except SessionKeyError as exc:
            raise invalid(str(exc)) from None
        if wanted and key_agent != wanted:
            raise invalid(
                f'agentId "{wanted}" does not match the agent of sessionKey "{key}" ({key_agent})'
            )
        specs = self.agents()
        spec = next((s for s in specs if s.id == key_agent), None)
        if spec is None:
            # the spec's words exactly (PROTOCOL.md 7.6); which ids exist goes in details
            raise InvalidRequest(
                f'unknown agent id "{key_agent}"',
                details={"agentId": key_agent, "configured": [s.id for s in specs]},
            )
        return spec, rest

    def main_session(self, agent_id: str | None = None) -> str:
        """The main session key of ``agent_id`` (default: the default agent)."""
        return session_key(
            normalize_agent_id(agent_id) if agent_id else self.default_agent(), "main"
        )

    # -- runs ------------------------------------------------------------------------------

    def find(self, run_id: str) -> Run | None:
        return self.active.get(run_id) or self.ended.get(run_id, self.now_ms())

    async def appeared(self, run_id: str) -> Run:
        """The run ``run_id`` once it exists: now, or when it is started (``agent.wait``
        may be called before the ``agent`` request it waits for).

        Cancellation: at any time; the caller bounds it (its timeout)."""
        while (run := self.find(run_id)) is None:
            await self._started.wait()
        return run

    def start(self, request: RunRequest) -> Run:
        """Start (or join) the run for ``request.run_id``; raises a ``GatewayError`` when refused."""
        existing = self.find(request.run_id)
        if existing is not None:
            return existing
        if not self.accepting or self.rt.draining or self.rt.nursery is None:
            raise Unavailable(
                "gateway is stopping; retry shortly",
                retryable=True,
                retry_after_ms=1000,
            )
        if len(self.active) >= MAX_ACTIVE_RUNS:
            raise Unavailable(
                f"too many agent runs in progress ({MAX_ACTIVE_RUNS}); retry later",
                retryable=True,
                retry_after_ms=1000,
            )
        spec, rest = self.resolve(request.agent_id, request.session_key)
        timeout_s = request.timeout_s or spec.timeout_s
        request = attrs.evolve(request, timeout_s=timeout_s)
        now = trio.current_time()
        key = session_key(spec.id, rest)
        # the session's queued system events are read by this turn, before its message
        events = self.rt.system_events.take(key)
        run = Run(
            request.run_id,
            spec,
            key,
            rest,
            with_events(request.message, events),
            self.now_ms(),
            now,
        )
        run.scope.deadline = now + timeout_s
        run.is_heartbeat = request.is_heartbeat
        run.chat = ChatStream(run.run_id, run.session_key, spec.id, self.emit_chat, self.now_ms)
        self.active[run.run_id] = run
        self._idle = trio.Event()
        self._started.set()
        self._started = trio.Event()
        self.rt.nursery.start_soon(execute, self, run, request, name=f"agent run {run.run_id}")
        # sends held chat text when the throttle allows; ends with the run's last chat event
        self.rt.nursery.start_soon(run.chat.run_flusher, name=f"chat deltas {run.run_id}")
        log.info("run %s started (agent %s, session %s)", run.run_id, spec.id, run.session_key)
        return run

    def finished(self, run: Run) -> None:
        """Called by the run itself once its outcome is recorded."""
        self.active.pop(run.run_id, None)
        # Kept for agent.wait and idempotent retries for minutes: not its input, which may
        # be megabytes (a 19 MB chat request x 20 held 1.7 GB; issue 16). It is in the
        # transcript, and nothing reads it once the run has started.
        run.message = ""
        self.ended.put(run.run_id, run, self.now_ms())
        run.done.set()
        run.touch()
        if not self.active:
            self._idle.set()
        log.info("run %s ended: %s (%s)", run.run_id, run.status, run.summary)

    def emit(self, run: Run, stream: str, data: dict[str, object]) -> None:
        payload = AgentEventPayload(
            run.run_id,
            run.next_seq(),
            stream,
            self.now_ms(),
            data,
            run.session_key,
            is_heartbeat=True if run.is_heartbeat else None,
        )
        # PROTOCOL 4.4: tool-stream events only for clients that asked for them
        cap = TOOL_EVENTS if stream == "tool" else None
        self.rt.hub.broadcast(ev.AGENT, payload, scope=READ, cap=cap)
        run.touch()

    def emit_chat(self, payload: ChatEventPayload) -> None:
        self.rt.hub.broadcast(ev.CHAT, payload, scope=READ)

    def abort(self, run_id: str, reason: str, origin: StopOrigin = "rpc") -> bool:
        run = self.active.get(run_id)
        return run is not None and run.stop("aborted", reason, origin)

    def abort_session(self, key: str, reason: str, origin: StopOrigin = "rpc") -> list[str]:
        return [
            r.run_id
            for r in list(self.active.values())
            if r.session_key == key and r.stop("aborted", reason, origin)
        ]

    def running_in(self, key: str) -> list[Run]:
        return [r for r in self.active.values() if r.session_key == key]

    def active_in(self, key: str) -> list[str]:
        return [r.run_id for r in self.active.values() if r.session_key == key]

    # -- stop / restart --------------------------------------------------------------------

    async def drain(self) -> None:
        """Drain hook: let runs finish within the drain budget, then interrupt the rest.

        Cancellation: expected (the drain budget). Interrupted runs then get up to
        ``INTERRUPT_BUDGET_S`` (shielded) to write their transcripts.
        """
        self.accepting = False
        try:
            await self._idle.wait()
        finally:
            reason = self.rt.stop_reason
            for run in list(self.active.values()):
                run.stop("interrupted", reason)
            with trio.CancelScope(shield=True), trio.move_on_after(INTERRUPT_BUDGET_S):
                await self._idle.wait()
