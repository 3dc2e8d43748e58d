"""``hooks.*``: the webhook endpoint on the gateway port (OPERATIONS.md A.7, CONTROL-UI.md 11).

Shapes only, like ``model.py``; :func:`problems` holds the rules that span keys (run by
``load.parse`` after the structural check), with the reference's texts. The gateway-token
reuse check needs the resolved auth, so it is in ``settings.resolve``.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..protocol.model import schema

HookAction = Literal["wake", "agent"]
WakeMode = Literal["now", "next-heartbeat"]

DEFAULT_PATH = "/hooks"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
HOOK_PREFIX = "hook:"


@attrs.frozen
class HookMatch:
    """Which requests a mapping takes: ``path`` = the sub-path after the base (``gmail`` for
    ``/hooks/gmail``), ``source`` = the payload's ``source`` field."""

    path: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    source: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@attrs.frozen
class HookMapping:
    """``hooks.mappings[]``: a named hook turned into a wake or an agent run. String fields
    may hold ``{{payload.path}}`` templates (``{{messages[0].subject}}``)."""

    id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    match: HookMatch = attrs.field(factory=HookMatch)
    action: HookAction = "agent"
    wake_mode: WakeMode = "now"
    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    session_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    message_template: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    text_template: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    deliver: bool | None = None
    channel: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    to: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    model: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    thinking: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    timeout_seconds: int | None = attrs.field(
        default=None, metadata=schema(minimum=1, maximum=86_400)
    )


@attrs.frozen
class Hooks:
    enabled: bool = False
    token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    path: str = attrs.field(default=DEFAULT_PATH, metadata=schema(min_length=1))
    max_body_bytes: int = attrs.field(
        default=DEFAULT_MAX_BODY_BYTES, metadata=schema(minimum=1, maximum=16 * 1024 * 1024)
    )
    default_session_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    allow_request_session_key: bool = False
    allowed_session_key_prefixes: list[str] | None = attrs.field(
        default=None, metadata=schema(min_length=1)
    )
    # omitted or ["*"]: every agent; []: none
    allowed_agent_ids: list[str] | None = attrs.field(default=None, metadata=schema(min_length=1))
    mappings: list[HookMapping] = attrs.field(factory=list)


def normalize_path(raw: str) -> str:
    """Leading ``/`` added, trailing ``/`` stripped: ``hooks/`` -> ``/hooks``."""
    path = raw.strip()
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/") or "/"


def prefixes(hooks: Hooks) -> list[str] | None:
    """The session-key prefixes a hook may use; None: any."""
    if hooks.allowed_session_key_prefixes is None:
        return None
    return [p.strip().lower() for p in hooks.allowed_session_key_prefixes if p.strip()]


def key_allowed(key: str, allowed: list[str] | None) -> bool:
    return allowed is None or any(key.lower().startswith(p) for p in allowed)


def problems(hooks: Hooks) -> list[str]:
    """Cross-key problems (OPERATIONS.md A.7: checked at start-up and on reload)."""
    found: list[str] = []
    if hooks.enabled and not hooks.token:
        found.append("hooks.enabled requires hooks.token")
    if normalize_path(hooks.path) == "/":
        found.append("hooks.path may not be '/'")
    allowed = prefixes(hooks)
    if hooks.default_session_key is not None:
        if not key_allowed(hooks.default_session_key, allowed):
            found.append("hooks.defaultSessionKey must match hooks.allowedSessionKeyPrefixes")
    elif allowed is not None and HOOK_PREFIX not in allowed:
        found.append(
            "hooks.allowedSessionKeyPrefixes must include 'hook:' when hooks.defaultSessionKey "
            "is unset"
        )
    for i, mapping in enumerate(hooks.mappings):
        if mapping.match.path is None and mapping.match.source is None and mapping.id is None:
            found.append(f"hooks.mappings[{i}].match: needs a path or a source (or an id)")
    return found
