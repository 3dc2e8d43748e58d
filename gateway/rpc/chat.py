"""WebChat methods: chat.send, chat.abort, chat.inject (PROTOCOL.md 7.8; CONTROL-UI.md 6).

``chat.history`` is in :mod:`.agent` with the other session readers. Runs started here are
ordinary agent runs (``runId`` = ``idempotencyKey``): they emit ``agent`` and ``chat`` events,
write the session's transcript and can be joined with ``agent.wait``.
"""

from __future__ import annotations

import logging
import uuid

import trio

from ..agent import attachments, chattext, transcript
from ..agent.keys import session_key
from ..agent.run import Run
from ..agent.service import AgentService, RunRequest, invalid
from ..auth import ADMIN, WRITE
from ..channels.delivery import Destination
from ..channels.outbox import Target
from ..channels.replies import deliver_payloads
from ..errors import PeerError, RpcError
from ..protocol.chat import (
    ChatAbortParams,
    ChatAbortResult,
    ChatEventMessage,
    ChatEventPayload,
    ChatInjectParams,
    ChatInjectResult,
    ChatSendParams,
    ChatSendResult,
    TextBlock,
)
from ..protocol.frames import ErrorCode
from ..runtime import Runtime
from .registry import CallContext, method

ABORT_WAIT_S = 5.0

log = logging.getLogger("gateway.chat")


async def deliver_reply(rt: Runtime, run: Run) -> None:
    """``deliver:true``: once the run has answered, the reply goes through the outbox to
    the chat the session last talked to through a channel (its ``lastRoute``), under
    ``chat:<runId>:<n>``. A session no channel has talked to has nowhere to go, so its
    reply stays in the gateway, as without ``deliver``.

    Cancellation: with the gateway; a reply not yet enqueued then is not sent."""
    await run.done.wait()
    service = rt.channels.service
    if run.status != "ok" or service is None:
        return
    route = await service.last_route(run.session_key)
    if route is None:
        log.info(
            "run %s: nothing to deliver to (session %s has no channel route)",
            run.run_id,
            run.session_key,
        )
        return
    if (route.channel, route.account_id) not in rt.channels.slots:
        log.warning(
            "run %s: the session's channel %s/%s is not configured any more; not delivered",
            run.run_id,
            route.channel,
            route.account_id,
        )
        return
    destination = Destination(route.channel, route.account_id, Target(route.to, route.thread_id))
    await deliver_payloads(rt, destination, f"chat:{run.run_id}", run.payloads, "chat", wait=False)


def _key(svc: AgentService, agent_id: str | None, raw_key: str, method_name: str) -> str:
    try:
        spec, rest = svc.resolve(agent_id, raw_key)
    except PeerError as exc:
        raise invalid(f"invalid {method_name} params: {exc.message}") from None
    return session_key(spec.id, rest)


async def _stopped(runs: list[Run]) -> None:
    """Until the runs have saved their partial text and sent ``aborted`` (bounded)."""
    with trio.move_on_after(ABORT_WAIT_S):
        for run in runs:
            await run.done.wait()


def _replay(run: Run) -> ChatSendResult:
    """A repeated ``idempotencyKey``: the run in flight, or how it ended."""
    if not run.done.is_set():
        return ChatSendResult(run_id=run.run_id, status="in_flight")
    if run.error is None:
        return ChatSendResult(run_id=run.run_id, status="ok")
    raise RpcError(
        run.error.code,
        run.error.message,
        details={"code": "CACHED_AGENT_RESULT", "runId": run.run_id},
        retryable=run.error.retryable,
        payload=ChatSendResult(run_id=run.run_id, status="error", summary=run.summary),
    )


@method("chat.send", params=ChatSendParams, result=ChatSendResult, scope=WRITE)
async def chat_send(ctx: CallContext, params: ChatSendParams) -> ChatSendResult:
    """Start a run in the session and answer at once; the reply streams as ``chat`` events.

    Text is NFC-normalized and stripped of control characters (NUL is refused); a stop
    command (``/stop``, ``stop``, ``abort``, ...) aborts the session's runs instead.
    """
    svc = ctx.runtime.agents
    existing = svc.find(params.idempotency_key)
    if existing is not None:
        return _replay(existing)
    try:
        text = chattext.normalize(params.message)
    except chattext.ChatTextError as exc:
        raise invalid(str(exc)) from None
    key = _key(svc, params.agent_id, params.session_key, "chat.send")
    if chattext.is_stop_command(text) and not params.attachments:
        stopped = [
            svc.active[r] for r in svc.abort_session(key, "stopped by /stop", "stop-command")
        ]
        await _stopped(stopped)
        return ChatSendResult(ok=True, aborted=bool(stopped), run_ids=[r.run_id for r in stopped])
    if not text.strip() and not params.attachments:
        raise invalid("message or attachment required")
    try:
        parts = attachments.parse(params.attachments or [])
    except attachments.AttachmentError as exc:
        raise invalid(f"invalid chat.send params: {exc}") from None
    timeout_s = params.timeout_ms / 1000 if params.timeout_ms else None
    try:
        run = svc.start(
            RunRequest(
                run_id=params.idempotency_key,
                message=text,
                agent_id=params.agent_id,
                session_key=key,
                timeout_s=timeout_s,
                attachments=tuple(parts),
                deliver=bool(params.deliver),
            )
        )
    except PeerError as exc:
        if exc.code == ErrorCode.INVALID_REQUEST:
            exc.message = f"invalid chat.send params: {exc.message}"
            exc.args = (exc.message,)
        raise
    if params.deliver and ctx.runtime.nursery is not None:
        ctx.runtime.nursery.start_soon(
            deliver_reply, ctx.runtime, run, name=f"deliver {run.run_id}"
        )
    return ChatSendResult(run_id=run.run_id, status="started")


@method("chat.abort", params=ChatAbortParams, result=ChatAbortResult, scope=WRITE)
async def chat_abort(ctx: CallContext, params: ChatAbortParams) -> ChatAbortResult:
    """Stop one run (``runId``) or every run of the session; answers once they have saved
    their partial text (with abort metadata) and sent ``chat`` ``aborted``."""
    svc = ctx.runtime.agents
    key = _key(svc, None, params.session_key, "chat.abort")
    reason = "stopped by chat.abort"
    if params.run_id is not None:
        run = svc.active.get(params.run_id)
        if run is None:
            return ChatAbortResult(ok=True, aborted=False, run_ids=[])
        if run.session_key != key:
            raise invalid("runId does not match sessionKey")
        runs = [run] if svc.abort(run.run_id, reason) else []
    else:
        runs = [svc.active[r] for r in svc.abort_session(key, reason)]
    await _stopped(runs)
    return ChatAbortResult(ok=True, aborted=bool(runs), run_ids=[r.run_id for r in runs])


@method("chat.inject", params=ChatInjectParams, result=ChatInjectResult, scope=ADMIN)
async def chat_inject(ctx: CallContext, params: ChatInjectParams) -> ChatInjectResult:
    """Append an assistant-visible note to the transcript and show it as a ``final``,
    without running the agent."""
    rt = ctx.runtime
    svc = rt.agents
    try:
        text = chattext.normalize(params.message)
        spec, rest = svc.resolve(None, params.session_key)
    except chattext.ChatTextError as exc:
        raise invalid(str(exc)) from None
    except PeerError as exc:
        raise invalid(f"invalid chat.inject params: {exc.message}") from None
    if not text.strip():
        raise invalid("message required")
    message_id = str(uuid.uuid4())
    now = rt.now_ms()
    note = transcript.injected_note(message_id, text, params.label, now)
    await svc.store.append(rt.settings.paths.state_dir, spec.id, rest, [note], now)
    svc.emit_chat(
        ChatEventPayload(
            run_id=f"inject-{message_id}",
            session_key=session_key(spec.id, rest),
            seq=1,
            state="final",
            agent_id=spec.id,
            message=ChatEventMessage("assistant", [TextBlock("text", text)], now),
            stop_reason="injected",
        )
    )
    return ChatInjectResult(ok=True, message_id=message_id)
