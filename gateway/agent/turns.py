"""The tool-call loop: ask the model, run the tools it calls, ask again -- bounded.

Each step is one model call. A reply without tool calls ends the loop. A reply with tool
calls runs them in order (each result, or error, goes back to the model as a tool message)
and starts the next step. After ``max_steps`` model calls that still ended in tool calls,
the loop stops with :class:`StepLimitError` rather than letting a confused model spin.

The loop knows nothing of trio, sockets or transcripts: the model call, the tool runner and
the sink for what happens are passed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from ..errors import StepLimitError
from .providers.base import Message, ModelReply, ModelRequest, OnDelta, ToolCall

Complete = Callable[[ModelRequest, OnDelta], Awaitable[ModelReply]]
RunTool = Callable[[ToolCall], Awaitable[tuple[str, bool]]]  # -> (result text, is_error)


class TurnSink(Protocol):
    def delta(self, text: str) -> None: ...

    def reply(self, reply: ModelReply) -> None: ...

    def tool_start(self, call: ToolCall) -> None: ...

    def tool_result(self, call: ToolCall, text: str, is_error: bool) -> None: ...


async def run_turns(
    complete: Complete, request: ModelRequest, run_tool: RunTool, max_steps: int, sink: TurnSink
) -> ModelReply:
    """Run the loop; returns the last reply (the one without tool calls).

    Cancellation: wherever the model call or a tool is; nothing is left half-recorded in the
    sink (a reply is reported only once complete, a tool result only once it exists).
    """
    messages = list(request.messages)
    for _ in range(max_steps):
        reply = await complete(attrs.evolve(request, messages=tuple(messages)), sink.delta)
        sink.reply(reply)
        if not reply.tool_calls:
            return reply
        messages.append(Message("assistant", reply.text, reply.tool_calls))
        for call in reply.tool_calls:
            sink.tool_start(call)
            text, is_error = await run_tool(call)
            sink.tool_result(call, text, is_error)
            messages.append(
                Message("tool", text, tool_call_id=call.id, tool_name=call.name, is_error=is_error)
            )
    raise StepLimitError(
        f"stopped after {max_steps} model calls: the model kept calling tools "
        "(raise agents.defaults.maxToolSteps to allow more)"
    )
