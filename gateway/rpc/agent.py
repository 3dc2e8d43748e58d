"""Agent and session methods: agent (two-stage), agent.wait, agent.abort, sessions.list,
chat.history (PROTOCOL.md 7.6-7.8)."""

from __future__ import annotations

import attrs
import trio

from ..agent import transcript
from ..agent.keys import session_key
from ..agent.run import Run
from ..agent.service import AgentService, RunRequest, invalid
from ..auth import READ, WRITE
from ..channels import agent_delivery
from ..channels.agent_delivery import DeliveryRequest
from ..errors import PeerError, RpcError
from ..protocol.agent import (
    AgentAbortParams,
    AgentAbortResult,
    AgentParams,
    AgentResponse,
    AgentWaitParams,
    AgentWaitResult,
    ChatHistoryParams,
    ChatHistoryResult,
    InFlightRun,
    LastRoute,
    SessionInfo,
    SessionsListParams,
    SessionsListResult,
)
from ..protocol.frames import ErrorCode
from .dispatch import send_interim
from .registry import CallContext, method

DEFAULT_WAIT_MS = 30_000
DEFAULT_HISTORY_LIMIT = 200
DEFAULT_SESSIONS_LIMIT = 100
ABORT_WAIT_S = 5.0


def final(run: Run, *, replayed: bool = False) -> AgentResponse:
    """The final ``res`` of a run: its payload, or RpcError carrying the payload too."""
    if run.error is None:
        return run.response()
    details = {"code": "CACHED_AGENT_RESULT", "runId": run.run_id} if replayed else None
    raise RpcError(
        run.error.code,
        run.error.message,
        details=details,
        retryable=run.error.retryable,
        payload=run.response(),
    )


def _prefixed(exc: PeerError) -> PeerError:
    if exc.code == ErrorCode.INVALID_REQUEST and not exc.message.startswith("invalid agent"):
        exc.message = f"invalid agent params: {exc.message}"
        exc.args = (exc.message,)
    return exc


def _start(svc: AgentService, request: RunRequest) -> Run:
    try:
        return svc.start(request)
    except PeerError as exc:
        raise _prefixed(exc) from None


@method("agent", params=AgentParams, result=AgentResponse, scope=WRITE)
async def agent(ctx: CallContext, params: AgentParams) -> AgentResponse:
    """Two-stage: ``accepted`` at once, the outcome when the run ends.

    A repeated ``idempotencyKey`` joins the same run (ack, then its outcome) or, if it
    ended within 5 minutes, gets that outcome in one ``res``. With ``deliver`` the reply
    also goes out through a channel (``to`` / ``replyTo`` / the session's ``lastRoute``)
    and the final payload says how (``result.deliveryStatus``).
    """
    rt = ctx.runtime
    svc = rt.agents
    existing = svc.find(params.idempotency_key)
    if existing is not None and existing.done.is_set():
        if existing.delivery_started:
            await existing.delivered.wait()
        return final(existing, replayed=True)
    request = DeliveryRequest(
        to=params.to,
        channel=params.channel,
        account_id=params.account_id,
        thread_id=params.thread_id,
        reply_to=params.reply_to,
        reply_channel=params.reply_channel,
        reply_account_id=params.reply_account_id,
        deliver=bool(params.deliver),
        best_effort=bool(params.best_effort_deliver),
    )
    try:
        route = await agent_delivery.plan(rt, request, params.session_key, params.agent_id)
    except PeerError as exc:
        raise _prefixed(exc) from None
    # timeoutMs wins over timeout (seconds, the reference's name); neither: the agent's default
    timeout_s = params.timeout_ms / 1000 if params.timeout_ms else params.timeout
    run = _start(
        svc,
        RunRequest(
            run_id=params.idempotency_key,
            message=params.message,
            agent_id=params.agent_id,
            session_key=route.session_key,
            timeout_s=timeout_s,
            extra_system_prompt=params.extra_system_prompt,
            deliver=route.destination is not None,
        ),
    )
    if route.destination is not None:
        agent_delivery.start_delivery(rt, run, route.destination, remember_route=route.explicit)
    send_interim(ctx, run.ack())
    await run.done.wait()
    if run.delivery_started:
        await run.delivered.wait()
    return final(run)


@method("agent.wait", params=AgentWaitParams, result=AgentWaitResult, scope=WRITE)
async def agent_wait(ctx: CallContext, params: AgentWaitParams) -> AgentWaitResult:
    """Wait for a run to end; ``timeout`` after ``timeoutMs`` does not cancel the run.

    As in the reference, a run not known (yet) is waited for too: it may be started after
    this call; one that never shows up -- or ended more than 5 minutes ago, or before a
    restart -- is a ``timeout`` like any other (PROTOCOL.md 7.7)."""
    svc = ctx.runtime.agents
    timeout_ms = DEFAULT_WAIT_MS if params.timeout_ms is None else params.timeout_ms
    run = svc.find(params.run_id)
    with trio.move_on_after(timeout_ms / 1000):
        run = await svc.appeared(params.run_id)
        await run.done.wait()
    if run is None:
        return AgentWaitResult(params.run_id, "timeout")
    if not run.done.is_set():
        return AgentWaitResult(run.run_id, "timeout", started_at=run.accepted_at)
    return AgentWaitResult(
        run.run_id,
        "ok" if run.status == "ok" else "error",
        started_at=run.accepted_at,
        ended_at=run.ended_at,
        error=run.summary if run.status != "ok" else None,
    )


@method("agent.abort", params=AgentAbortParams, result=AgentAbortResult, scope=WRITE)
async def agent_abort(ctx: CallContext, params: AgentAbortParams) -> AgentAbortResult:
    """Abort one run (``runId``) or every run of a session (``sessionKey``); returns once
    the aborted runs have recorded their end (bounded wait)."""
    svc = ctx.runtime.agents
    reason = "aborted by agent.abort"
    key = None
    if params.session_key is not None:
        spec, rest = svc.resolve(None, params.session_key)
        key = session_key(spec.id, rest)
    if params.run_id is not None:
        run = svc.active.get(params.run_id)
        if run is not None and key is not None and run.session_key != key:
            raise invalid(f'runId "{params.run_id}" does not match sessionKey "{key}"')
        runs = [run] if run is not None and svc.abort(params.run_id, reason) else []
    elif key is not None:
        runs = [svc.active[r] for r in svc.abort_session(key, reason)]
    else:
        raise invalid("invalid agent.abort params: runId or sessionKey is required")
    with trio.move_on_after(ABORT_WAIT_S):
        for run in runs:
            await run.done.wait()
    return AgentAbortResult(ok=True, aborted=bool(runs), run_ids=[r.run_id for r in runs])


@method("sessions.list", params=SessionsListParams, result=SessionsListResult, scope=READ)
async def sessions_list(ctx: CallContext, params: SessionsListParams) -> SessionsListResult:
    rt = ctx.runtime
    svc = rt.agents
    if params.agent_id is not None:
        agent_ids = [svc.resolve(params.agent_id, None)[0].id]
    else:
        agent_ids = [a.id for a in svc.agents()]
    now = rt.now_ms()
    limit = params.limit or DEFAULT_SESSIONS_LIMIT
    count, rows = await svc.store.list(rt.settings.paths.state_dir, agent_ids, now, limit)
    for i, row in enumerate(rows):
        active = svc.active_in(row.key)
        if active:
            rows[i] = attrs.evolve(row, active_run_ids=active)
    # the sessions' lastRoute, where a channel is configured (else no database is opened)
    service = rt.channels.service if rt.channels.slots else None
    if service is not None and rows:
        routes = await service.last_routes([row.key for row in rows])
        for i, row in enumerate(rows):
            route = routes.get(row.key)
            if route is not None:
                rows[i] = attrs.evolve(row, last_route=LastRoute(*attrs.astuple(route)))
    return SessionsListResult(now, count, rows)


@method("chat.history", params=ChatHistoryParams, result=ChatHistoryResult, scope=READ)
async def chat_history(ctx: CallContext, params: ChatHistoryParams) -> ChatHistoryResult:
    rt = ctx.runtime
    svc = rt.agents
    spec, rest = svc.resolve(params.agent_id, params.session_key)
    key = session_key(spec.id, rest)
    records = await svc.store.read(rt.settings.paths.state_dir, spec.id, rest)
    active = svc.active_in(key)
    max_chars = params.max_chars or transcript.MAX_TEXT_CHARS
    messages = transcript.chat_messages(records, set(active), max_chars)
    window, has_more, next_offset = transcript.page(
        messages, params.limit or DEFAULT_HISTORY_LIMIT, params.offset or 0
    )
    capped = transcript.cap_size(window)
    if len(capped) < len(window):  # the size cap cut the window: page on from what was sent
        has_more, next_offset = True, (params.offset or 0) + len(capped)
    streams = [r.chat for r in svc.running_in(key) if r.chat is not None]
    in_flight = InFlightRun(streams[-1].run_id, streams[-1].text) if streams else None
    return ChatHistoryResult(
        key,
        capped,
        has_more,
        SessionInfo(bool(active), active),
        next_offset=next_offset,
        in_flight_run=in_flight,
    )
