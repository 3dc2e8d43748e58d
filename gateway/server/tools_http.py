"""``POST /tools/invoke`` (OPERATIONS.md A.6): run one tool from the agents' registry.

Always on, bearer auth like the other APIs, 2 MB body limit. The policy is the agents'
(``tools.allow/deny`` and the agent's own) plus the HTTP deny list (``gateway.tools``):
a tool that is unknown or not allowed is a 404 ``Tool not available``, so a caller cannot
tell a denied tool from a missing one. Bad arguments and tool errors are 400 ``tool_error``
naming the argument; a crash inside a tool is a 500 with a generic message (logged).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..agent.tools import TOOLS, ToolContext, ToolError, allowed, http_allowed, invoke
from ..errors import GatewayError, GatewayFault, HttpError, PeerError
from ..runtime import Runtime
from .http import Receive, SendFn
from .httpapi import (
    authorize,
    check_method,
    parse_json,
    read_body,
    send_error,
    send_json,
)

log = logging.getLogger("gateway.http")

MAX_BODY_BYTES = 2 * 1024 * 1024


def _error(status: int, kind: str, message: str) -> HttpError:
    return HttpError(
        status, message, kind, body={"ok": False, "error": {"type": kind, "message": message}}
    )


async def tools_invoke(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    try:
        check_method(scope, ("POST",))
        authorize(rt, scope)
        body = parse_json(await read_body(rt, scope, receive, MAX_BODY_BYTES))
        result = await _invoke(rt, body)
    except GatewayError as error:
        await send_error(send, error, ok_field=True)
        return
    await send_json(send, 200, {"ok": True, "result": result})


async def _invoke(rt: Runtime, body: dict[str, object]) -> object:
    name = body.get("name") or body.get("tool")
    if not isinstance(name, str) or not name:
        raise _error(400, "invalid_request", "tools.invoke requires body.tool")
    args = body.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _error(400, "invalid_request", "args: expected an object")
    session = body.get("sessionKey")
    agent_id = body.get("agentId")
    for field, value in (("sessionKey", session), ("agentId", agent_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise _error(400, "invalid_request", f"{field}: expected a non-empty string")
    try:
        key = None if session is None or session == "main" else str(session)
        spec, rest = rt.agents.resolve(str(agent_id) if agent_id else None, key)
    except PeerError as exc:
        raise _error(400, "invalid_request", exc.message) from None
    config = rt.settings.config
    tool = TOOLS.get(name)
    if (
        tool is None
        or not allowed(name, config.tools, spec.tools)
        or not http_allowed(tool, config.gateway.tools)
    ):
        raise _error(404, "not_found", f"Tool not available: {name}")
    action = body.get("action")
    properties = tool.parameters.get("properties")
    if isinstance(action, str) and isinstance(properties, dict) and "action" in properties:
        args.setdefault("action", action)
    context = ToolContext(rt, spec, f"agent:{spec.id}:{rest}")
    started = time.monotonic()
    try:
        result = await invoke(context, tool, args)
    except ToolError as exc:
        raise _error(400, "tool_error", str(exc)) from None
    except Exception:
        log.exception("tool %s failed over /tools/invoke", name)
        message = f"tool {name} failed (see the gateway log)"
        raise GatewayFault(
            message, body={"ok": False, "error": {"type": "tool_error", "message": message}}
        ) from None
    log.info("tools.invoke %s ok in %.0f ms", name, (time.monotonic() - started) * 1000)
    return result
