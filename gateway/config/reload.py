"""What a config change means for the running gateway: ``plan_reload(old, new)``. Pure.

Every changed leaf is classified from one table, by the longest matching key-path prefix:

* ``none``    -- nothing to do (read by clients, or read fresh on every use);
* ``hot``     -- applied to the running gateway by swapping in the new settings;
* ``restart`` -- needs the listener or the connections rebuilt: in-process restart.

A path that no prefix matches needs a restart: unknown keys must not silently not apply.
README.md documents this table; tests check every row.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Literal

import attrs

from ..protocol.model import camel
from .model import Config

Action = Literal["none", "hot", "restart"]
ReloadMode = Literal["off", "hot", "restart", "hybrid"]

RULES: tuple[tuple[str, Action], ...] = (
    ("gateway.remote", "none"),
    ("gateway.reload", "none"),
    ("gateway.mode", "none"),
    ("gateway.ws.tickIntervalMs", "hot"),
    ("gateway.ws.maxBufferedBytes", "hot"),
    ("gateway.ws.handshakeTimeoutMs", "hot"),
    ("gateway.ws.closeGraceMs", "hot"),
    ("gateway.ws.maxPreAuthPerIp", "hot"),  # read on every accept
    ("gateway.ws.maxConnectionsPerIp", "hot"),
    ("gateway.ws.maxPayload", "restart"),
    ("gateway.ws.pingIntervalMs", "restart"),
    ("gateway.health", "hot"),
    ("gateway.auth.rateLimit", "hot"),
    ("gateway.shutdownTimeoutMs", "hot"),
    ("gateway.drainTimeoutMs", "hot"),
    ("gateway.http", "hot"),
    ("gateway.tools", "hot"),
    ("gateway.nodes", "hot"),
    ("gateway.metrics", "hot"),
    # read from the settings on every upgrade and connect
    ("gateway.controlUi.allowedOrigins", "hot"),
    ("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback", "hot"),
    ("gateway.trustedProxies", "hot"),
    ("gateway.allowRealIpFallback", "hot"),
    ("gateway.watchdog", "hot"),  # read on every beat (0 -> on needs a restart to start it)
    ("canvasHost", "restart"),
    ("gateway", "restart"),
    ("commands", "hot"),
    ("logging", "hot"),
    ("agents", "hot"),
    ("models", "hot"),
    # the channel supervisor diffs its accounts itself: policy keys apply to the next
    # message, token/endpoint changes restart that one account (channels/accounts.py)
    ("channels", "hot"),
    ("readiness", "hot"),
    ("outbox", "hot"),  # read by the outbox on every attempt
    ("send", "hot"),
    ("hooks", "hot"),  # read by the /hooks/* handler on every request
    ("session", "none"),  # read per message
    ("bindings", "none"),
    ("messages", "none"),
)


def classify(path: str) -> Action:
    """The action for one changed key path (longest matching prefix; unknown -> restart)."""
    best: tuple[int, Action] = (-1, "restart")
    for prefix, action in RULES:
        if (path == prefix or path.startswith(prefix + ".")) and len(prefix) > best[0]:
            best = (len(prefix), action)
    return best[1]


def changed_paths(old: object, new: object, prefix: str = "") -> Iterator[str]:
    """Dotted camelCase paths of the leaves that differ between two attrs values."""
    if attrs.has(type(old)) and type(old) is type(new):
        for field in attrs.fields(typing.cast(typing.Any, type(old))):
            path = f"{prefix}.{camel(field.name)}" if prefix else camel(field.name)
            yield from changed_paths(getattr(old, field.name), getattr(new, field.name), path)
    elif old != new:
        yield prefix


@attrs.frozen
class ReloadPlan:
    changes: dict[str, Action]
    mode: ReloadMode

    @property
    def paths(self) -> list[str]:
        return sorted(self.changes)

    @property
    def hot(self) -> list[str]:
        return sorted(p for p, a in self.changes.items() if a == "hot")

    @property
    def needs_restart(self) -> list[str]:
        return sorted(p for p, a in self.changes.items() if a == "restart")

    @property
    def decision(self) -> Literal["nothing", "ignore", "hot", "restart"]:
        """What the gateway does with this change under its reload mode."""
        if not self.changes:
            return "nothing"
        if self.mode == "off":
            return "ignore"
        if self.mode == "restart":
            return "restart"
        if self.needs_restart and self.mode == "hybrid":
            return "restart"
        return "hot"


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Classify the change; the *new* config's reload mode decides (you can switch modes)."""
    changes = {path: classify(path) for path in changed_paths(old, new)}
    return ReloadPlan(changes, new.gateway.reload.mode)


def merge_paths(old: Config, new: Config, paths: list[str]) -> Config:
    """``old`` with the values at ``paths`` taken from ``new`` (hot mode skips restart keys)."""
    result = old
    for path in paths:
        result = _set(result, path.split("."), _get(new, path.split(".")))
    return result


def _field_name(obj: object, key: str) -> str:
    for field in attrs.fields(typing.cast(typing.Any, type(obj))):
        if camel(field.name) == key:
            return str(field.name)
    raise KeyError(key)


def _get(obj: object, keys: list[str]) -> object:
    for key in keys:
        obj = getattr(obj, _field_name(obj, key))
    return obj


def _set(obj: typing.Any, keys: list[str], value: object) -> typing.Any:
    name = _field_name(obj, keys[0])
    if len(keys) == 1:
        return attrs.evolve(obj, **{name: value})
    return attrs.evolve(obj, **{name: _set(getattr(obj, name), keys[1:], value)})
