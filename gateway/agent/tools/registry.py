"""The tool registry and the one policy both agent runs and ``/tools/invoke`` use.

A tool has a name, a description, a JSON Schema for its arguments object, and an async
function. Arguments are validated against the schema before the function runs; a problem is
a :class:`ToolError` naming the argument (``args.path: ...``), which the model (or the HTTP
caller) sees as a tool error, never as a crash.

Policy (pure): a name is allowed when no ``deny`` pattern matches it and ``allow`` is empty
or has a matching pattern (``*`` globs). Over HTTP a hard deny list applies on top
(:data:`HTTP_DENY` plus every tool marked ``dangerous``); ``gateway.tools.allow`` lifts
entries off it and ``gateway.tools.deny`` extends it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import attrs

from ...config.model import ToolPolicy
from ...errors import PeerError
from ...protocol.model import JsonObject
from ..providers.base import ToolSpec

if TYPE_CHECKING:
    from ...config.settings import Settings
    from ...events import Hub
    from ..agents import AgentSpec
    from ..service import AgentService


class ToolHost(Protocol):
    """What a tool may use of the gateway (a Runtime; tests pass their own)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def agents(self) -> AgentService: ...
    def now_ms(self) -> int: ...
    def uptime_ms(self) -> int: ...


# Names the reference gateway refuses over HTTP by default (OPERATIONS.md A.6).
HTTP_DENY = (
    "exec",
    "spawn",
    "shell",
    "fs_write",
    "fs_delete",
    "fs_move",
    "apply_patch",
    "sessions_spawn",
    "sessions_send",
    "cron",
    "gateway",
    "nodes",
)


class ToolError(PeerError):
    """The tool cannot do what was asked (bad arguments, missing file); shown to the caller."""


@attrs.frozen
class ToolContext:
    runtime: ToolHost
    agent: AgentSpec
    session_key: str


ToolFn = Callable[[ToolContext, JsonObject], Awaitable[object]]


@attrs.frozen
class Tool:
    name: str
    description: str
    parameters: JsonObject
    run: ToolFn
    dangerous: bool = False

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


TOOLS: dict[str, Tool] = {}


def register(tool: Tool) -> Tool:
    """Add a tool. Its parameters schema is checked on first use (``check_args``) and by
    the test suite for every registered tool: jsonschema costs ~3 MB of RSS and tens of
    milliseconds of start-up that a gateway whose agents call no tools never needs."""
    if tool.name in TOOLS:
        raise RuntimeError(f"tool {tool.name!r} registered twice")
    TOOLS[tool.name] = tool
    return tool


def check_schema(tool: Tool) -> None:
    """``SchemaError`` if the tool's parameters are not a valid JSON Schema."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(tool.parameters)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def allowed(name: str, *policies: ToolPolicy) -> bool:
    """Every policy must allow ``name``: deny wins, an empty allow list allows everything."""
    for policy in policies:
        if _matches(name, policy.deny):
            return False
        if policy.allow and not _matches(name, policy.allow):
            return False
    return True


def http_allowed(tool: Tool, gateway_policy: ToolPolicy) -> bool:
    """The extra HTTP rule: the hard deny list, adjusted by ``gateway.tools``."""
    if _matches(tool.name, gateway_policy.deny):
        return False
    if tool.dangerous or tool.name in HTTP_DENY:
        return _matches(tool.name, gateway_policy.allow)
    return True


def specs_for(*policies: ToolPolicy) -> tuple[ToolSpec, ...]:
    return tuple(t.spec() for name, t in sorted(TOOLS.items()) if allowed(name, *policies))


def check_args(tool: Tool, args: object) -> JsonObject:
    if not isinstance(args, dict):
        raise ToolError(f"args: expected an object, got {type(args).__name__}")
    from jsonschema import Draft202012Validator  # on first use: see register()
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(tool.parameters).iter_errors(args))
    if error is not None:
        path = ".".join(["args", *(str(p) for p in error.absolute_path)])
        raise ToolError(f"{path}: {error.message}")
    return args


async def invoke(ctx: ToolContext, tool: Tool, args: object) -> object:
    """Validate ``args`` and run the tool. Raises :class:`ToolError` for the caller's mistakes.

    Cancellation: the tool's own.
    """
    return await tool.run(ctx, check_args(tool, args))
