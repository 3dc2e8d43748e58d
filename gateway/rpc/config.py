"""config.get (PROTOCOL.md 7.13): the config file and the running configuration, redacted."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from ..auth import READ
from ..config.snapshot import snapshot
from ..errors import Unavailable
from ..protocol.config import ConfigGetResult
from ..protocol.system import EmptyParams
from .registry import CallContext, method


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@method("config.get", params=EmptyParams, result=ConfigGetResult, scope=READ)
async def config_get(ctx: CallContext, params: EmptyParams) -> ConfigGetResult:
    settings = ctx.runtime.settings
    path = settings.paths.config_path
    try:
        text = await trio.to_thread.run_sync(_read, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise Unavailable(f"config read failed: {path}: {exc}", retryable=False) from None
    return snapshot(str(path), text, os.environ, settings.config)
