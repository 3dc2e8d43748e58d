"""Which agent and which session an OpenAI-style request targets (OPERATIONS.md A.2, A.3).

The ``model`` field names an agent, not an LLM: ``smart-agent-neo`` (and ``.../default``)
is the default agent, ``smart-agent-neo/<id>``, ``smart-agent-neo:<id>`` and
``agent:<id>`` a specific one; the ``x-smart-agent-neo-agent-id`` header wins over both.
Any other model name goes to the default agent, as the reference does.

Sessions: an explicit ``x-smart-agent-neo-session-key`` header wins; else ``user`` makes the
session sticky (``agent:<id>:<prefix>-user:<user>``); else each request gets a fresh one.
"""

from __future__ import annotations

import re
import uuid

import attrs

from ..errors import SelectError

PRODUCT = "smart-agent-neo"
AGENT_HEADERS = ("x-smart-agent-neo-agent-id", "x-smart-agent-neo-agent")
SESSION_HEADER = "x-smart-agent-neo-session-key"
RESERVED_SESSION_PREFIXES = ("subagent:", "cron:", "acp:")
_AGENT_MODEL = re.compile(rf"^(?:{PRODUCT}[:/]|agent:)([a-z0-9][a-z0-9_-]{{0,63}})$", re.I)


@attrs.frozen
class Target:
    agent_id: str
    session_key: str


def agent_from_model(model: str | None) -> str | None:
    """The agent id ``model`` names, ``""`` for the default agent, ``None`` if not ours."""
    if not model:
        return ""
    lowered = model.strip().lower()
    if lowered in (PRODUCT, f"{PRODUCT}/default", f"{PRODUCT}:default"):
        return ""
    match = _AGENT_MODEL.match(lowered)
    return match.group(1).lower() if match else None


def select_target(
    headers: dict[str, str],
    model: str | None,
    user: str | None,
    *,
    known_agents: list[str],
    default_agent: str,
    prefix: str,
) -> Target:
    """Pick agent and session; :class:`SelectError` (404 for an unknown agent) otherwise."""
    agent = next((headers[h].strip().lower() for h in AGENT_HEADERS if headers.get(h)), None)
    if agent is None:
        agent = agent_from_model(model) or ""
    agent = agent or default_agent
    if agent not in known_agents:
        shown = model if model and agent_from_model(model) else agent
        raise SelectError(f"Model '{shown}' not found.", status=404)
    explicit = headers.get(SESSION_HEADER, "").strip()
    if explicit:
        if explicit.lower().startswith(RESERVED_SESSION_PREFIXES):
            raise SelectError(f"{SESSION_HEADER}: reserved session key prefix in {explicit!r}")
        return Target(agent, explicit)
    if user:
        return Target(agent, f"agent:{agent}:{prefix}-user:{user.strip().lower()}")
    return Target(agent, f"agent:{agent}:{prefix}:{uuid.uuid4()}")


def model_ids(agent_ids: list[str], default_agent: str) -> list[str]:
    """What ``GET /v1/models`` lists: the product name, the default, and every agent."""
    ids = [PRODUCT, f"{PRODUCT}/default"]
    for agent in [default_agent, *agent_ids]:
        name = f"{PRODUCT}/{agent}"
        if name not in ids:
            ids.append(name)
    return ids


def model_object(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": PRODUCT, "permission": []}
