"""``gateway status`` and ``smart-agent-neo status``: gather, then render or print JSON.

``gateway status`` exits 0 when the gateway is running, 3 when it is not (stopped,
not installed, still starting) and 1 when something is wrong (degraded, conflict) -- the
LSB convention, so scripts can branch without parsing. ``status`` (the overview) always
exits 0 once it has reported: the gateway being down is part of the report.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from ..config.paths import Paths
from ..service.status import GatewayStatus, gather
from . import interrupt
from .jsonout import dumps, to_json
from .progress import working
from .service import host_for
from .status_view import GatewayStatusReport, OverviewReport

EXIT_CODES = {
    "running": 0,
    "starting": 3,
    "stopped": 3,
    "not-installed": 3,
    "degraded": 1,
    "conflict": 1,
}


def _gather(
    args: argparse.Namespace, paths: Paths, err: Console, *, deep: bool, no_probe: bool
) -> tuple[GatewayStatus, dict[str, Any] | None]:
    async def run() -> tuple[GatewayStatus, dict[str, Any] | None]:
        return await gather(
            host_for(args),
            paths,
            url=args.url,
            token=args.token,
            password=args.password,
            timeout_ms=args.timeout,
            no_probe=no_probe,
            deep=deep,
        )

    what = "Asking the service manager" + ("" if no_probe else " and probing the gateway")
    with working(err, what + "..."):
        return interrupt.run(run)


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    status, _ = _gather(args, paths, err, deep=args.deep, no_probe=args.no_probe)
    if args.json:
        print(dumps(status))
    else:
        out.print(GatewayStatusReport(status))
    return EXIT_CODES[status.state]


def overview_json(status: GatewayStatus, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The RPC ``status`` payload's keys when reachable, plus ``rpc`` and ``local`` always."""
    local = to_json(status)
    return {
        **(payload or {}),
        "rpc": local.pop("rpc"),
        "local": {
            key: local[key]
            for key in ("state", "reasons", "profile", "config", "service", "collisions")
        },
    }


def overview_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    status, payload = _gather(args, paths, err, deep=False, no_probe=False)
    if args.json:
        print(json.dumps(overview_json(status, payload), indent=2, ensure_ascii=False))
    else:
        out.print(OverviewReport(status, payload))
    return 0
