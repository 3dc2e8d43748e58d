"""``restart``: an in-process restart requested over the control plane (admin only)."""

from __future__ import annotations

import trio

from ..auth import ADMIN
from ..protocol.system import RestartParams, RestartResult
from ..runtime import RESTART_EXPECTED_MS
from .registry import CallContext, method


@method("restart", params=RestartParams, result=RestartResult, scope=ADMIN)
async def restart(ctx: CallContext, params: RestartParams) -> RestartResult:
    """Restart after the response is sent (``delayMs`` later). Requests coalesce."""
    rt = ctx.runtime
    reason = params.reason or "restart requested over RPC"
    delay = (params.delay_ms or 0) / 1000
    scheduled = not rt.stop_requested.is_set()
    if scheduled and rt.nursery is not None:

        async def later() -> None:
            # a tick even for delay 0, so the response leaves before the shutdown broadcast
            await trio.sleep(delay)
            rt.request_restart(reason)

        rt.nursery.start_soon(later)
    return RestartResult(
        ok=True, scheduled=scheduled, restart_expected_ms=RESTART_EXPECTED_MS + int(delay * 1000)
    )
