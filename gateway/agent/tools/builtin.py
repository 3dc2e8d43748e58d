"""The built-in tools. All are safe: they read, and only what the agent may see.

``read_file`` is confined to the agent's workspace: the requested path is resolved
(symlinks included) and must stay inside the resolved workspace, so neither ``../`` nor a
symlink pointing out can reach other files; nor can a hard link (a file with more than one
link is refused) or a symlink swapped in after the check (opened with ``O_NOFOLLOW``).
"""

from __future__ import annotations

import errno
import os
import stat
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


MAX_PATH_CHARS = 4096  # PATH_MAX: a longer path names no file


def confine(workspace: Path, requested: str) -> Path:
    """The file ``requested`` names inside ``workspace``; ToolError if it would leave it."""
    if not requested.strip():
        raise ToolError("args.path: must not be empty")
    if "\x00" in requested:
        raise ToolError("args.path: must not contain a NUL byte")
    if len(requested) > MAX_PATH_CHARS:
        raise ToolError(f"args.path: longer than {MAX_PATH_CHARS} characters")
    root = workspace.resolve()
    target = (root / requested).resolve()
    if target != root and root not in target.parents:
        raise ToolError(f'args.path: "{requested}" is outside the agent workspace ({root})')
    return target


def _read(path: Path, limit: int) -> tuple[bytes, int]:
    """Read at most ``limit`` bytes. The file is opened without following a last-moment
    symlink, must be a regular file, and must have no other hard link: a hard link inside
    the workspace to a file outside it passes every path check (issue 16)."""
    shown = path.name if len(path.name) <= 80 else path.name[:77] + "..."
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ToolError(f'args.path: no such file "{shown}" in the workspace') from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ToolError(f'args.path: "{shown}" is a symbolic link') from None
        raise ToolError(f'args.path: cannot read "{shown}": {exc.strerror}') from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f'args.path: "{shown}" is not a regular file')
        if info.st_nlink > 1:
            raise ToolError(
                f'args.path: "{shown}" has other hard links (it may be a file outside the '
                "workspace); refusing to read it"
            )
        try:
            return handle.read(limit), info.st_size
        except OSError as exc:
            raise ToolError(f'args.path: cannot read "{shown}": {exc.strerror}') from None


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
