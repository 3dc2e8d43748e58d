"""``<state dir>/gateway.env``: secrets from the installing shell that the service needs.

A token exported in the shell (``SMART_AGENT_NEO_GATEWAY_TOKEN``, or a ``${VAR}`` the config
refers to) is invisible to a service, which would then start with another token or an
unresolved config. ``install`` copies exactly those variables into this 0600 file, and the
systemd unit loads it with ``EnvironmentFile=-`` -- the unit itself never holds a secret.
Other keys already in the file are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config.load import referenced_vars
from ..config.paths import ENV_PASSWORD, ENV_TOKEN

HEADER = (
    "# Environment for the smart-agent-neo gateway service (written by `gateway install`).\n"
    "# Holds secrets: keep it 0600.\n"
)


def needed_variables(env: Mapping[str, str], config_text: str | None) -> dict[str, str]:
    names = [ENV_TOKEN, ENV_PASSWORD, *referenced_vars(config_text or "")]
    return {name: env[name] for name in dict.fromkeys(names) if env.get(name)}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == "'":
            return inner
        out, i = [], 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return value


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            values[key.strip()] = _unquote(value)
    return values


def render(values: Mapping[str, str]) -> str:
    return HEADER + "".join(f"{key}={_quote(value)}\n" for key, value in values.items())


def merged(existing_text: str | None, needed: Mapping[str, str]) -> str | None:
    """New file content, or ``None`` when nothing needs to change."""
    current = parse(existing_text or "")
    if all(current.get(k) == v for k, v in needed.items()):
        return None
    return render({**current, **needed})
