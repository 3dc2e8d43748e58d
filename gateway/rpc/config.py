"""``config.get``: the config, read-only and with its secrets hidden (PROTOCOL.md 7.13;
CONTROL-UI.md 4). Editing through the control plane (``config.set|apply|patch``) is not
offered: the gateway never writes the user's file (README, "Configure")."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from ..auth import READ
from ..config import snapshot
from ..errors import Unavailable
from ..protocol.config import ConfigGetParams, ConfigGetResult, ConfigIssue
from .registry import CallContext, method


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@method("config.get", params=ConfigGetParams, result=ConfigGetResult, scope=READ)
async def config_get(ctx: CallContext, params: ConfigGetParams) -> ConfigGetResult:
    settings = ctx.runtime.settings
    path = settings.paths.config_path
    try:
        raw = await trio.to_thread.run_sync(_read, path)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
        raise Unavailable(f"config read failed: {path}: {why or exc}") from None
    snap = await trio.to_thread.run_sync(
        snapshot.build, str(path), raw, settings.config, dict(os.environ)
    )
    return ConfigGetResult(
        path=snap.path,
        exists=snap.exists,
        raw=snap.raw,
        parsed=snap.parsed if isinstance(snap.parsed, dict) else None,
        valid=snap.valid,
        config=snap.config,
        hash=snap.hash,
        issues=[ConfigIssue(i.path, i.message) for i in snap.issues],
        warnings=[ConfigIssue(i.path, i.message) for i in snap.warnings],
        legacy_issues=[],
    )
