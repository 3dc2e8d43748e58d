"""config.get, config.set|apply|patch, config.schema (PROTOCOL.md 7.13).

Writes are validated like start-up (``config/remote.py``), written atomically and applied
by the config watcher like any saved edit (hot or an in-process restart, per
``gateway.reload.mode``); the answer says which (``reload``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import trio

from ..auth import ADMIN, READ
from ..config.edit import holds_secret
from ..config.reload import plan_reload
from ..config.remote import Kind, plan_write, text_hash
from ..config.snapshot import redact, snapshot
from ..errors import Unavailable
from ..fsutil import write_atomic
from ..protocol.config import (
    ConfigGetResult,
    ConfigSchemaResult,
    ConfigWriteParams,
    ConfigWriteResult,
)
from ..protocol.system import EmptyParams
from .registry import CallContext, method

log = logging.getLogger("gateway.config")

_writes = trio.Lock()  # one config write at a time: the baseHash check and the write together


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


async def _current(path: Path) -> str | None:
    try:
        return await trio.to_thread.run_sync(_read, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise Unavailable(f"config read failed: {path}: {exc}", retryable=False) from None


@method("config.get", params=EmptyParams, result=ConfigGetResult, scope=READ)
async def config_get(ctx: CallContext, params: EmptyParams) -> ConfigGetResult:
    settings = ctx.runtime.settings
    path = settings.paths.config_path
    return snapshot(str(path), await _current(path), os.environ, settings.config)


async def _write(ctx: CallContext, kind: Kind, params: ConfigWriteParams) -> ConfigWriteResult:
    settings = ctx.runtime.settings
    path = settings.paths.config_path
    async with _writes:
        current = await _current(path)
        planned = plan_write(kind, current, params.raw, params.base_hash, os.environ, str(path))
        private = current is None or holds_secret(planned.document)
        try:
            await trio.to_thread.run_sync(lambda: write_atomic(path, planned.text, secret=private))
        except OSError as exc:
            raise Unavailable(f"config write failed: {path}: {exc}", retryable=False) from None
    decision = plan_reload(settings.config, planned.config).decision
    log.info(
        "config.%s wrote %s (%s)%s",
        kind,
        path,
        decision,
        f": {params.note}" if params.note else "",
    )
    return ConfigWriteResult(
        ok=True,
        path=str(path),
        config=redact(planned.document),
        hash=text_hash(planned.text),
        reload=decision,
    )


@method("config.set", params=ConfigWriteParams, result=ConfigWriteResult, scope=ADMIN)
async def config_set(ctx: CallContext, params: ConfigWriteParams) -> ConfigWriteResult:
    return await _write(ctx, "set", params)


@method("config.apply", params=ConfigWriteParams, result=ConfigWriteResult, scope=ADMIN)
async def config_apply(ctx: CallContext, params: ConfigWriteParams) -> ConfigWriteResult:
    return await _write(ctx, "apply", params)


@method("config.patch", params=ConfigWriteParams, result=ConfigWriteResult, scope=ADMIN)
async def config_patch(ctx: CallContext, params: ConfigWriteParams) -> ConfigWriteResult:
    return await _write(ctx, "patch", params)


@method("config.schema", params=EmptyParams, result=ConfigSchemaResult, scope=ADMIN)
async def config_schema(ctx: CallContext, params: EmptyParams) -> ConfigSchemaResult:
    from ..cli.config_cmd import config_schema as build  # the same schema `config schema` prints

    return ConfigSchemaResult(schema=build())
