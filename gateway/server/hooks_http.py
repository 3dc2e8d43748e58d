"""``/hooks/*`` on the gateway port (OPERATIONS.md A.7): wake the agent, run it, or a mapping.

Off until ``hooks.enabled`` (which needs ``hooks.token``); first in the router (A.0). The
checks run in the runbook-era order, each with its exact answer:

1. a path outside ``hooks.path`` is not ours (the next route gets it);
2. ``?token=`` in the query -> 400 text (secrets never travel in URLs);
3. the hook token from ``Authorization: Bearer`` or ``x-smart-agent-neo-token``, compared
   timing-safely -> 401 ``Unauthorized``; 20 failures a minute from one client lock it out
   for a minute (429 + ``Retry-After``, loopback not exempt);
4. not POST -> 405 with ``Allow: POST``;
5. no sub-path -> 404;
6. a JSON body of at most ``hooks.maxBodyBytes`` -> 413 / 400 ``{"ok":false,"error":...}``.

``POST <base>/wake`` queues a system event for the agent's main session and, with mode
``now``, asks for a heartbeat at once (200). ``POST <base>/agent`` starts an isolated agent
run (202 + ``runId``) whose reply is delivered (``deliver``, default true) to ``to`` /
``channel`` or the main session's last route; when it ends, a one-line summary is queued for
the main session (and a heartbeat asked for with ``wakeMode: now``). Other sub-paths go
through ``hooks.mappings``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import uuid
from typing import Any
from urllib.parse import parse_qs

from .. import hooks as hk
from ..agent.keys import session_key as make_session_key
from ..agent.service import RunRequest
from ..config.hooks import Hooks, normalize_path
from ..errors import GatewayError, HttpError, PayloadTooLarge
from ..protocol.codec import JsonRejected, loads
from ..runtime import Runtime
from .http import TEXT, Receive, SendFn, client_of, respond
from .httpapi import header, headers_dict, read_body, send_json

log = logging.getLogger("gateway.hooks")

QUERY_TOKEN = (
    "Hook token must be provided via Authorization: Bearer <token> or X-Smart-Agent-Neo-Token "
    "header (query parameters are not allowed)."
)
SUMMARY_CHARS = 500


def base_path(hooks: Hooks) -> str | None:
    """The base path when hooks are on, else None."""
    if not hooks.enabled or not hooks.token:
        return None
    return normalize_path(hooks.path)


def owns(rt: Runtime, path: str) -> bool:
    base = base_path(rt.settings.config.hooks)
    return base is not None and (path == base or path.startswith(base + "/"))


def presented_token(scope: dict[str, Any]) -> str | None:
    authorization = header(scope, "authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = header(scope, "x-smart-agent-neo-token")
    return token.strip() if token and token.strip() else None


def token_matches(presented: str | None, expected: str) -> bool:
    """Timing-safe: both sides hashed to the same length, then compare_digest."""
    given = hashlib.sha256((presented or "").encode()).digest()
    wanted = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(given, wanted) and presented is not None


async def _text(send: SendFn, status: int, body: str, extra: list[tuple[bytes, bytes]]) -> None:
    await respond(send, status, body.encode(), TEXT, extra=extra)


async def handle_hooks(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    """Answer a request under the hooks base path (the router checked :func:`owns`)."""
    hooks = rt.settings.config.hooks
    base = normalize_path(hooks.path)
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"), True)
    if "token" in query:
        await _text(send, 400, QUERY_TOKEN, [])
        return
    client = client_of(rt, scope)
    limiter, now = rt.hook_limiter, rt.now_ms()
    wait_ms = limiter.retry_after_ms(client.ip, now, local=False)
    if wait_ms is not None:
        retry = str(max(1, math.ceil(wait_ms / 1000))).encode()
        await _text(send, 429, "Too Many Requests", [(b"retry-after", retry)])
        return
    assert hooks.token is not None  # owns() checked it
    if not token_matches(presented_token(scope), hooks.token):
        limiter.record_failure(client.ip, now, local=False)
        log.warning("hook auth failed from %s", client.ip)
        await _text(send, 401, "Unauthorized", [])
        return
    limiter.record_success(client.ip)
    if scope["method"] != "POST":
        await _text(send, 405, "Method Not Allowed", [(b"allow", b"POST")])
        return
    sub_path = scope["path"][len(base) :].strip("/")
    if not sub_path:
        await _text(send, 404, "Not Found", [])
        return
    try:
        body = await read_body(rt, scope, receive, hooks.max_body_bytes)
    except PayloadTooLarge:
        await send_json(send, 413, {"ok": False, "error": "payload too large"})
        return
    except HttpError as exc:  # 408 "request body timeout" (A.7), a client gone: 400
        status = 408 if exc.http_status == 408 else 400
        error = "request body timeout" if status == 408 else exc.message
        await send_json(send, status, {"ok": False, "error": error})
        return
    except GatewayError as exc:  # too many big bodies at once: 503, retry shortly
        await send_json(send, exc.http_status, {"ok": False, "error": exc.message})
        return
    try:
        payload = _parse(body)
        status, answer = await dispatch(rt, hooks, sub_path, payload, headers_dict(scope))
    except hk.HookRefused as refused:
        await send_json(send, 400, {"ok": False, "error": refused.error})
        return
    except GatewayError as exc:  # the gateway is stopping, too many runs
        await send_json(send, exc.http_status, {"ok": False, "error": exc.message})
        return
    if status == 404:
        await _text(send, 404, "Not Found", [])
        return
    await send_json(send, status, answer)


def _parse(body: bytes | bytearray) -> dict[str, object]:
    if not body or body.isspace():
        return {}
    try:
        value = loads(body)
    except JsonRejected as exc:
        raise hk.HookRefused(f"invalid JSON body: {exc.message}") from None
    if not isinstance(value, dict):
        raise hk.HookRefused("body must be a JSON object")
    return value


async def dispatch(
    rt: Runtime, hooks: Hooks, sub_path: str, payload: dict[str, object], headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    if sub_path == "wake":
        return 200, wake(rt, hooks, hk.wake_request(payload), "request")
    if sub_path == "agent":
        return 202, await agent(rt, hooks, hk.agent_request(payload, headers))
    mapping = hk.find_mapping(hooks.mappings, sub_path, payload)
    if mapping is None:
        return 404, {}
    context = {"payload": payload, "headers": headers, "path": sub_path, "now": rt.now_ms()}
    try:
        asked = hk.from_mapping(mapping, context)
    except hk.HookRefused:
        raise
    except Exception:
        log.exception("hook mapping %s failed", mapping.id or sub_path)
        return 500, {"ok": False, "error": "hook mapping failed"}
    if isinstance(asked, hk.WakeRequest):
        return 200, wake(rt, hooks, asked, "mapping")
    key = hk.idempotency_key(payload, headers)
    return 202, await agent(rt, hooks, asked if key is None else _with_key(asked, key))


def _with_key(asked: hk.AgentHookRequest, key: str) -> hk.AgentHookRequest:
    import attrs

    return attrs.evolve(asked, idempotency_key=key)


def _agent_id(rt: Runtime, hooks: Hooks, wanted: str | None) -> str:
    """The hook's agent: a configured one named in the request, else the default agent
    (runbook era: an unknown id falls back); then ``hooks.allowedAgentIds``."""
    known = {a.id for a in rt.agents.agents()}
    agent_id = wanted.strip().lower() if wanted else None
    if agent_id not in known:
        agent_id = rt.agents.default_agent()
    hk.agent_allowed(hooks, agent_id)
    return agent_id


def _session(rt: Runtime, agent_id: str, key: str) -> str:
    try:
        spec, rest = rt.agents.resolve(agent_id if not key.startswith("agent:") else None, key)
    except GatewayError as exc:
        raise hk.HookRefused(exc.message) from None
    return make_session_key(spec.id, rest)


def wake(rt: Runtime, hooks: Hooks, asked: hk.WakeRequest, source: hk.Source) -> dict[str, object]:
    agent_id = _agent_id(rt, hooks, asked.agent_id)
    session = None
    if asked.session_key is not None:
        session = _session(rt, agent_id, hk.session_key_for(hooks, asked.session_key, source))
    target = session or rt.agents.main_session(agent_id)
    rt.system_events.enqueue(target, asked.text, rt.now_ms())
    log.info("hook wake (%s) queued for %s", asked.mode, target)
    if asked.mode == "now":
        rt.heartbeat_wakes.request("hook:wake", session)
    return {"ok": True, "mode": asked.mode}


async def agent(rt: Runtime, hooks: Hooks, asked: hk.AgentHookRequest) -> dict[str, object]:
    from ..channels.agent_delivery import DeliveryRequest, last_route, plan, start_delivery

    if asked.channel not in hk.CHANNELS:
        raise hk.HookRefused(hk.channel_error())
    agent_id = _agent_id(rt, hooks, asked.agent_id)
    run_id = f"hook:{asked.idempotency_key}" if asked.idempotency_key else str(uuid.uuid4())
    existing = rt.agents.find(run_id)
    if existing is not None:  # a retried delivery of the same hook: the same run
        return {"ok": True, "runId": run_id}
    session = _session(
        rt, agent_id, hk.session_key_for(hooks, asked.session_key, asked.session_source)
    )
    destination = None
    if asked.deliver and rt.channels.slots:
        channel = None if asked.channel == "last" else asked.channel
        request = DeliveryRequest(
            to=asked.to,
            channel=channel,
            account_id=asked.account_id,
            deliver=True,
            best_effort=True,  # a hook's run is not refused for want of a route
        )
        try:
            found = await plan(rt, request, session, agent_id)
            destination = found.destination
            if destination is None and asked.to is None:
                destination = await last_route(rt, rt.agents.main_session(agent_id), agent_id)
                if destination is not None and channel and destination.channel != channel:
                    destination = None
        except GatewayError as exc:
            log.info("hook %s: no delivery (%s)", asked.name, exc.message)
    run = rt.agents.start(
        RunRequest(
            run_id,
            hk.wrap_untrusted(asked.name, asked.message),
            agent_id=agent_id,
            session_key=session,
            timeout_s=asked.timeout_s,
            extra_system_prompt=hk.UNTRUSTED_NOTE,
        )
    )
    if destination is not None:
        start_delivery(rt, run, destination, source="hook", key_prefix=f"hook:{run.run_id}")
    if rt.nursery is not None:
        rt.nursery.start_soon(_summarize, rt, run, asked, agent_id, name=f"hook summary {run_id}")
    log.info("hook %s started run %s in %s", asked.name, run.run_id, session)
    return {"ok": True, "runId": run.run_id}


async def _summarize(rt: Runtime, run: Any, asked: hk.AgentHookRequest, agent_id: str) -> None:
    """When the hook's run ends, the main session hears how it went (and, with
    ``wakeMode: now``, a heartbeat reads it at once)."""
    await run.done.wait()
    text = "\n".join(run.payloads).strip() if run.status == "ok" else run.summary
    if len(text) > SUMMARY_CHARS:
        text = text[: SUMMARY_CHARS - 1] + "…"
    outcome = "" if run.status == "ok" else f" ({run.status})"
    rt.system_events.enqueue(
        rt.agents.main_session(agent_id), f"Hook {asked.name}{outcome}: {text}", rt.now_ms()
    )
    if asked.wake_mode == "now":
        rt.heartbeat_wakes.request(f"hook:{asked.name}")
