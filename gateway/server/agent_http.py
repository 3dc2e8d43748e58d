"""Agent runs started over HTTP: start one, follow its text, abort it when the client leaves.

The run itself lives in the server's nursery like any other (``AgentService``); the HTTP
request only waits for it. If the client disconnects first, the run is aborted and its
transcript says so (FAILURE-MODES.md 31).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import trio

from ..agent.providers.base import Message
from ..agent.run import Run
from ..agent.service import RunRequest
from ..config.model import HttpEndpoint
from ..openai.select import Target, select_target
from ..runtime import Runtime
from .http import Receive
from .httpapi import (
    authorize,
    check_method,
    headers_dict,
    parse_json,
    read_body,
    watch_disconnect,
)

DISCONNECTED = "client disconnected"
KEEPALIVE_S = 15.0


class AgentRequest(Protocol):
    """What both OpenAI request formats carry for choosing the agent and session."""

    @property
    def model(self) -> str: ...

    @property
    def user(self) -> str | None: ...


R = TypeVar("R", bound=AgentRequest)


def agent_ids(rt: Runtime) -> tuple[list[str], str]:
    return [a.id for a in rt.agents.agents()], rt.agents.default_agent()


async def read_agent_request(
    rt: Runtime,
    scope: dict[str, Any],
    receive: Receive,
    endpoint: HttpEndpoint,
    parse: Callable[[dict[str, object]], R],
    prefix: str,
) -> tuple[R, Target]:
    """405, 401/429, 413, 400 in that order; then the parsed request and its agent/session."""
    check_method(scope, ("POST",))
    authorize(rt, scope)
    body = parse_json(await read_body(rt, scope, receive, endpoint.max_body_bytes))
    request = parse(body)  # FormatError, SelectError: answered 400/404 by their class
    known, default = agent_ids(rt)
    target = select_target(
        headers_dict(scope),
        request.model,
        request.user,
        known_agents=known,
        default_agent=default,
        prefix=prefix,
    )
    return request, target


def start_run(
    rt: Runtime,
    prefix: str,
    target: Target,
    message: str,
    system: str | None,
    prelude: tuple[Message, ...],
) -> Run:
    request = RunRequest(
        run_id=f"{prefix}_{uuid.uuid4()}",
        message=message,
        agent_id=target.agent_id,
        session_key=target.session_key,
        extra_system_prompt=system,
        prelude=prelude or None,  # no earlier turns sent: the session's own history counts
    )
    return rt.agents.start(request)  # its refusals are answered by their class (errors.py)


async def follow(
    rt: Runtime,
    run: Run,
    receive: Receive,
    on_text: Callable[[str], Awaitable[None]] | None,
    on_idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Until the run ends; new text goes to ``on_text`` (if given) as it arrives, and
    ``on_idle`` is called after every :data:`KEEPALIVE_S` without any (SSE keep-alives, so
    proxies do not drop a stream while the model thinks or a tool runs).

    A client that disconnects, or a write that fails, aborts the run.

    Cancellation: leaves the run running; the caller's cancel is not the client leaving.
    """

    def abort() -> None:
        rt.agents.abort(run.run_id, DISCONNECTED)

    sent = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_disconnect, receive, abort)
        while True:
            changed = run.changed
            if on_text is not None and len(run.text) > sent:
                piece, sent = run.text[sent:], len(run.text)
                try:
                    await on_text(piece)
                except Exception:
                    abort()
                    on_text = None  # the client is gone: stop writing, let the run end
            if run.done.is_set():
                break
            with trio.move_on_after(KEEPALIVE_S) as idle:
                await changed.wait()
            if idle.cancelled_caught and on_idle is not None and on_text is not None:
                try:
                    await on_idle()
                except Exception:
                    abort()
                    on_text = None
        nursery.cancel_scope.cancel()
