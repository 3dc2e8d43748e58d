"""One run from accepted to ended: transcript, model, tools, events, outcome.

The order is fixed and relied on by clients: lifecycle ``start`` -> ``assistant`` deltas and
``tool`` steps -> lifecycle ``end``/``error`` -> (``done`` fires) -> the final ``res``.
Whatever way the run ends -- reply, provider error, deadline, ``agent.abort``, a client
that went away, or a gateway stop -- the transcript gets what was said so far and one
``run`` record that says how it ended, written even while the run is being cancelled.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import trio

from .. import observe
from ..errors import EmptyReplyError, GatewayFault
from ..protocol.chat import ChatUsage, ErrorKind
from ..protocol.frames import ErrorCode
from . import attachments, providers, transcript
from .agents import ModelChoice, resolve_model
from .attachments import ImagePart
from .providers.base import Image, Message, ModelReply, ModelRequest, ProviderError, ToolCall
from .run import EndStatus, Run
from .tools import TOOLS, ToolContext, ToolError, allowed, invoke, specs_for
from .transcript import Record
from .turns import run_turns

if TYPE_CHECKING:
    from .service import AgentService, RunRequest

log = logging.getLogger("gateway.agent")

WRITE_BUDGET_S = 10.0  # how long a cancelled run may take to save its transcript


@attrs.define
class RunSink:
    """Receives what the loop does; turns it into events, records and the run's text."""

    svc: AgentService
    run: Run
    choice: ModelChoice
    records: list[Record] = attrs.field(factory=list)
    partial: str = ""  # text of the step in progress, not yet part of a complete reply

    def delta(self, text: str) -> None:
        self.partial += text
        self.run.text += text
        self.svc.emit(self.run, "assistant", {"text": self.run.text, "delta": text})
        if self.run.chat is not None:
            self.run.chat.add(text)

    def reply(self, reply: ModelReply) -> None:
        run = self.run
        self.partial = ""
        if run.chat is not None:
            run.chat.step_done()
        if reply.text:
            run.payloads.append(reply.text)
        if reply.usage is not None:
            run.usage = attrs.evolve(
                run.usage,
                input=run.usage.input + reply.usage.input,
                output=run.usage.output + reply.usage.output,
            )
        self.records.append(
            transcript.assistant_message(
                run.run_id,
                reply.text,
                reply.tool_calls,
                self.svc.now_ms(),
                provider=self.choice.provider_name,
                model=self.choice.model_id,
                stop_reason=reply.stop_reason,
            )
        )

    def tool_start(self, call: ToolCall) -> None:
        data: dict[str, object] = {
            "phase": "start",
            "name": call.name,
            "toolCallId": call.id,
            "args": call.arguments,
        }
        self.svc.emit(self.run, "tool", data)

    def tool_result(self, call: ToolCall, text: str, is_error: bool) -> None:
        self.records.append(
            transcript.tool_result(self.run.run_id, call, text, is_error, self.svc.now_ms())
        )
        data: dict[str, object] = {
            "phase": "result",
            "name": call.name,
            "toolCallId": call.id,
            "result": text,
            "isError": is_error,
        }
        self.svc.emit(self.run, "tool", data)


def system_prompt(run: Run, extra: str | None, now_ms: int) -> str:
    agent = run.agent
    now = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="seconds")
    parts = [
        f"You are {agent.name}, a personal assistant running inside the smart-agent-neo "
        f"gateway (agent id {agent.id}). The current time is {now}. Your workspace "
        f"directory is {agent.workspace}.",
    ]
    parts += [p for p in (agent.system_prompt, extra) if p]
    return "\n\n".join(parts)


async def run_tool(svc: AgentService, run: Run, call: ToolCall) -> tuple[str, bool]:
    config = svc.rt.settings.config
    tool = TOOLS.get(call.name)
    if tool is None or not allowed(call.name, config.tools, run.agent.tools):
        return f"tool not available: {call.name}", True
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError as exc:
        return f"arguments are not valid JSON ({exc})", True
    try:
        result = await invoke(ToolContext(svc.rt, run.agent, run.session_key), tool, args)
    except ToolError as exc:
        return str(exc), True
    except Exception as exc:
        log.exception("tool %s failed", call.name)
        return f"tool {call.name} failed: {exc}", True
    return (result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)), False


async def execute(svc: AgentService, run: Run, request: RunRequest) -> None:
    """Drive ``run`` to its end. Never raises for run failures; they become the outcome.

    Cancellation: ``run.scope`` (deadline, abort, interrupt) ends the run with that status;
    a cancel from outside (the gateway's nursery going away) ends it as interrupted. Either
    way the transcript is saved before this returns.
    """
    state_dir = svc.rt.settings.paths.state_dir
    config = svc.rt.settings.config
    status: EndStatus = "interrupted"
    summary = "the gateway stopped before the run finished"
    code: str | None = None
    kind: ErrorKind = "unknown"
    sink: RunSink | None = None
    svc.emit(run, "lifecycle", {"phase": "start", "startedAt": run.accepted_at})
    try:
        with run.scope:
            choice = resolve_model(config, run.agent)
            run.provider, run.model = choice.provider_name, choice.model_id
            sink = RunSink(svc, run, choice)
            if request.prelude is not None:
                history = request.prelude
            else:
                records = await svc.store.read(state_dir, run.agent.id, run.rest)
                history = transcript.model_history(records, run.agent.history_limit)
            parts = list(request.attachments)
            user = transcript.user_message(
                run.run_id, run.message, run.accepted_at, attachments.record(parts)
            )
            await svc.store.append(state_dir, run.agent.id, run.rest, [user], svc.now_ms())
            images = tuple(Image(p.mime_type, p.data) for p in parts if isinstance(p, ImagePart))
            asked = Message("user", attachments.model_text(run.message, parts), images=images)
            model_request = ModelRequest(
                model=choice.model_id,
                system=system_prompt(run, request.extra_system_prompt, svc.now_ms()),
                messages=(*history, asked),
                tools=specs_for(config.tools, run.agent.tools) if choice.provider else (),
                max_tokens=choice.max_tokens,
            )

            async def model(req: ModelRequest, on_delta: providers.OnDelta) -> ModelReply:
                started = trio.current_time()
                outcome = "error"
                try:
                    reply = await providers.complete(choice, req, on_delta)
                    outcome = "ok"
                    return reply
                finally:
                    observe.provider_call(
                        svc.rt,
                        choice.provider_name,
                        choice.model_id,
                        trio.current_time() - started,
                        outcome=outcome,
                    )

            async def tool(call: ToolCall) -> tuple[str, bool]:
                return await run_tool(svc, run, call)

            await run_turns(model, model_request, tool, run.agent.max_tool_steps, sink)
            if not run.payloads:
                raise EmptyReplyError(f"the model ({choice.label}) returned an empty reply")
            status, summary = "ok", "completed"
        if run.scope.cancelled_caught:
            if run.stop_status is None:
                status, code, kind = "timeout", ErrorCode.AGENT_TIMEOUT, "timeout"
                summary = f"agent run timed out after {request.timeout_s:g} s"
            else:
                status, summary = run.stop_status, run.stop_reason or run.stop_status
    except ProviderError as exc:
        status, summary = "error", str(exc)
        kind = "rate_limit" if exc.status == 429 else "unknown"
    except GatewayFault as exc:  # the models config, step limit, empty reply
        status, summary = "error", str(exc)
    except Exception as exc:
        log.exception("agent run %s failed", run.run_id)
        status, summary = "error", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        with trio.CancelScope(shield=True):
            await _finish(svc, run, sink, status, summary, code, kind)


async def _finish(
    svc: AgentService,
    run: Run,
    sink: RunSink | None,
    status: EndStatus,
    summary: str,
    code: str | None,
    kind: ErrorKind = "unknown",
) -> None:
    now = svc.now_ms()
    run.end(status, summary, now, code)
    records = sink.records if sink is not None else []
    if sink is not None and sink.partial and status != "ok":
        abort: dict[str, object] | None = None
        if status == "aborted":  # PROTOCOL 7.8: partial text persisted with abort metadata
            abort = {"aborted": True, "origin": run.stop_origin, "runId": run.run_id}
        records.append(
            transcript.assistant_message(
                run.run_id,
                sink.partial,
                (),
                now,
                provider=sink.choice.provider_name,
                model=sink.choice.model_id,
                stop_reason=status,
                abort=abort,
            )
        )
    records.append(transcript.run_end(run.run_id, status, summary, now - run.accepted_at, now))
    state_dir = svc.rt.settings.paths.state_dir
    with trio.move_on_after(WRITE_BUDGET_S):
        try:
            await svc.store.append(state_dir, run.agent.id, run.rest, records, now)
        except OSError as exc:
            log.error("run %s: cannot save transcript: %s", run.run_id, exc)
    _end_chat(run, status, summary, kind)
    if status == "ok":
        svc.emit(run, "lifecycle", {"phase": "end", "startedAt": run.accepted_at, "endedAt": now})
    else:
        svc.emit(
            run,
            "lifecycle",
            {"phase": "error", "status": status, "error": summary, "endedAt": now},
        )
    outcome = {"ok": "ok", "timeout": "timeout", "aborted": "aborted"}.get(status, "error")
    observe.agent_run(
        svc.rt, run.agent.id, outcome, (now - run.accepted_at) / 1000, run_id=run.run_id
    )
    svc.finished(run)


def _end_chat(run: Run, status: EndStatus, summary: str, kind: ErrorKind) -> None:
    """The run's last ``chat`` event: ``final``, ``aborted`` (a stop, or the gateway going
    down) or ``error``; emitted after the transcript is saved, so a client that reloads
    history on it finds the reply there."""
    chat = run.chat
    if chat is None:
        return
    if status == "ok":
        total = run.usage.input + run.usage.output
        chat.final(ChatUsage(run.usage.input, run.usage.output, total), "stop")
    elif status in ("aborted", "interrupted"):
        chat.aborted(status, None if status == "aborted" else summary)
    else:
        chat.error(summary, kind)
