"""Agent runs started over HTTP: start one, follow its text, abort it when the client leaves.

The run itself lives in the server's nursery like any other (``AgentService``); the HTTP
request only waits for it. If the client disconnects first, the run is aborted and its
transcript says so (FAILURE-MODES.md 31).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import trio

from ..agent.providers.base import Message
from ..agent.run import Run
from ..agent.service import RunRequest
from ..errors import RpcError
from ..openai.select import Target
from ..protocol.frames import ErrorCode
from ..runtime import Runtime
from .http import Receive
from .httpapi import HttpError, watch_disconnect

DISCONNECTED = "client disconnected"
KEEPALIVE_S = 15.0


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
    try:
        return rt.agents.start(request)
    except RpcError as exc:
        if exc.code == ErrorCode.INVALID_REQUEST:
            raise HttpError(400, exc.message) from None
        raise HttpError(503, exc.message, "api_error") from None


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
