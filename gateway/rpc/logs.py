"""``logs.tail``: the gateway's file log, read through the control plane (PROTOCOL.md 7.9).

Reads whatever file this gateway's settings point at (``logs.log_target``) -- the same
function the file sink uses, so the reader and the writer cannot disagree. The read runs in
a worker thread: up to a megabyte of disk I/O must not stall the event loop.
"""

from __future__ import annotations

from datetime import date

import trio

from ..auth import READ
from ..errors import Unavailable
from ..logs import log_target
from ..logs.tail import read_tail
from ..protocol.logs import DEFAULT_LIMIT, DEFAULT_MAX_BYTES, LogsTailParams, LogsTailResult
from .registry import CallContext, method


@method("logs.tail", params=LogsTailParams, result=LogsTailResult, scope=READ)
async def logs_tail(ctx: CallContext, params: LogsTailParams) -> LogsTailResult:
    rt = ctx.runtime
    target = log_target(rt.settings)
    today = date.fromtimestamp(rt.now_ms() / 1000)
    limit = params.limit or DEFAULT_LIMIT
    max_bytes = params.max_bytes or DEFAULT_MAX_BYTES
    try:
        tail = await trio.to_thread.run_sync(
            read_tail, target, today, params.cursor, limit, max_bytes
        )
    except OSError as exc:
        raise Unavailable(f"log read failed: {exc.strerror or exc}") from None
    return LogsTailResult(
        file=tail.file,
        cursor=tail.cursor,
        size=tail.size,
        lines=tail.lines,
        truncated=tail.truncated,
        reset=tail.reset,
    )
