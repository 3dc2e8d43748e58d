"""The built-in tools. All are safe: they read, and only what the agent may see.

``read_file`` is confined to the agent's workspace: the requested path is resolved
(symlinks included) and must stay inside the resolved workspace, so neither ``../`` nor a
symlink pointing out can reach other files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from ... import __version__
from ...protocol.codec import to_wire
from ...protocol.model import JsonObject
from .registry import Tool, ToolContext, ToolError, register

DEFAULT_READ_BYTES = 64 * 1024
MAX_READ_BYTES = 1024 * 1024


async def current_time(ctx: ToolContext, args: JsonObject) -> object:
    name = args.get("timezone")
    try:
        zone = ZoneInfo(str(name)) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f'args.timezone: unknown time zone "{name}" (use an IANA name like Europe/Paris)'
        ) from None
    now_ms = ctx.runtime.now_ms()
    moment = datetime.fromtimestamp(now_ms / 1000, zone)
    return {
        "iso": moment.isoformat(timespec="seconds"),
        "epochMs": now_ms,
        "timezone": str(name) if name else "UTC",
        "weekday": moment.strftime("%A"),
    }


async def sessions_list(ctx: ToolContext, args: JsonObject) -> object:
    rt = ctx.runtime
    limit = args.get("limit")
    count, rows = await rt.agents.store.list(
        rt.settings.paths.state_dir,
        [ctx.agent.id],
        rt.now_ms(),
        limit if isinstance(limit, int) else 20,
    )
    return {"count": count, "sessions": to_wire(rows)}


async def gateway_status(ctx: ToolContext, args: JsonObject) -> object:
    rt = ctx.runtime
    return {
        "version": __version__,
        "uptimeMs": rt.uptime_ms(),
        "url": rt.settings.url,
        "connections": len(rt.hub.peers),
        "activeRuns": len(rt.agents.active),
        "agents": [a.id for a in rt.agents.agents()],
        "defaultAgentId": rt.agents.default_agent(),
    }


def confine(workspace: Path, requested: str) -> Path:
    """The file ``requested`` names inside ``workspace``; ToolError if it would leave it."""
    if not requested.strip():
        raise ToolError("args.path: must not be empty")
    root = workspace.resolve()
    target = (root / requested).resolve()
    if target != root and root not in target.parents:
        raise ToolError(f'args.path: "{requested}" is outside the agent workspace ({root})')
    return target


def _read(path: Path, limit: int) -> tuple[bytes, int]:
    if not path.exists():
        raise ToolError(f'args.path: no such file "{path.name}" in the workspace')
    if not path.is_file():
        raise ToolError(f'args.path: "{path.name}" is not a regular file')
    size = path.stat().st_size
    with path.open("rb") as handle:
        return handle.read(limit), size


async def read_file(ctx: ToolContext, args: JsonObject) -> object:
    path = confine(ctx.agent.workspace, str(args["path"]))
    raw_limit = args.get("maxBytes")
    limit = raw_limit if isinstance(raw_limit, int) else DEFAULT_READ_BYTES
    data, size = await trio.to_thread.run_sync(_read, path, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if len(data) == limit and size > limit:
            text = data[: limit - 3].decode("utf-8", errors="ignore")  # cut inside a character
        else:
            raise ToolError(f'args.path: "{args["path"]}" is not UTF-8 text') from None
    return {
        "path": str(path.relative_to(ctx.agent.workspace.resolve())),
        "size": size,
        "truncated": size > len(data),
        "content": text,
    }


register(
    Tool(
        "current_time",
        "The current date and time, in UTC or in a given IANA time zone.",
        {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
            "additionalProperties": False,
        },
        current_time,
    )
)
register(
    Tool(
        "sessions_list",
        "List this agent's conversation sessions, most recently active first.",
        {
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}},
            "additionalProperties": False,
        },
        sessions_list,
    )
)
register(
    Tool(
        "gateway_status",
        "Status of the smart-agent-neo gateway: version, uptime, connections, active runs.",
        {"type": "object", "properties": {}, "additionalProperties": False},
        gateway_status,
    )
)
register(
    Tool(
        "read_file",
        "Read a UTF-8 text file from the agent's workspace (paths are relative to it).",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1},
                "maxBytes": {"type": "integer", "minimum": 1, "maximum": MAX_READ_BYTES},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        read_file,
    )
)
