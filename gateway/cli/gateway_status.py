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

from rich.console import Console, Group

from ..config.paths import Paths
from ..errors import GatewayError
from ..service.status import GatewayStatus, gather
from . import interrupt
from .jsonout import to_json
from .progress import working
from .service import host_for
from .status_view import GatewayStatusReport, OverviewReport, channel_lines

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


def _issue(text: str) -> dict[str, str]:
    path, sep, message = text.partition(": ")
    return {"path": path, "message": message} if sep else {"path": "", "message": text}


def status_json(status: GatewayStatus) -> dict[str, Any]:
    """Our keys, plus the ones OPERATIONS.md E.5's schema names (``service.label``,
    ``loaded``/``loadedText``, ``config.cli``/``daemon``, ``rpc.durationMs``, ``port.hints``)
    so scripts written against either find what they read."""
    data: dict[str, Any] = to_json(status)
    service = data["service"]
    runtime = status.service.runtime
    service["label"] = status.service.manager
    service["loaded"] = bool(runtime is not None and runtime.loaded)
    service["loadedText"] = "enabled" if service["manager"] == "systemd" else "loaded"
    service["notLoadedText"] = "disabled" if service["manager"] == "systemd" else "not loaded"
    if not status.service.installed or runtime is None:
        # no unit, or a manager that cannot be asked: say whether a gateway of this
        # profile runs anyway, so `service.runtime.status` is always there to read
        running = status.lock.pid is not None or status.rpc.ok
        detail = "not installed" if not status.service.installed else "service manager unreachable"
        service["runtime"] = {
            "status": "running"
            if running
            else ("unknown" if status.service.installed else "stopped"),
            "pid": status.lock.pid or status.rpc.pid,
            "detail": "not under the service manager" if running else detail,
            "missingUnit": not status.service.installed,
        }
    config = data["config"]
    config["cli"] = {
        "path": status.config.path,
        "exists": status.config.exists,
        "valid": status.config.valid,
        "issues": [_issue(i) for i in status.config.issues],
    }
    if status.config.service_path is not None:
        config["daemon"] = {"path": status.config.service_path}
    data["rpc"]["durationMs"] = status.rpc.latency_ms
    data["port"]["hints"] = list(status.reasons) if status.state == "conflict" else []
    return data


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    if args.require_rpc and args.no_probe:
        raise GatewayError("--require-rpc cannot be combined with --no-probe")
    status, _ = _gather(args, paths, err, deep=args.deep, no_probe=args.no_probe)
    if args.json:
        print(json.dumps(status_json(status), indent=2, ensure_ascii=False))
    else:
        out.print(GatewayStatusReport(status))
    if args.require_rpc and not status.rpc.ok:
        return 1
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
    """``status``: ``--deep``/``--all`` add live channel probes and the system-level service
    scan; ``--all`` also prints the full ``gateway status`` report; ``--verbose`` says how
    the target was chosen."""
    deep = args.deep or args.all
    status, payload = _gather(args, paths, err, deep=deep, no_probe=False)
    if args.json:
        data = overview_json(status, payload)
        if deep and status.channels is not None:
            data["channelsProbe"] = status.channels
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    out.print(OverviewReport(status, payload))
    if args.verbose:
        for line in where_we_looked_status(status):
            out.print(line, markup=False, highlight=False)
    if deep and status.channels is not None:
        out.print(Group(*channel_lines(status.channels)))
    if args.all:
        out.print("")
        out.print(GatewayStatusReport(status))
    return 0


def where_we_looked_status(status: GatewayStatus) -> list[str]:
    return [
        f"Gateway target: {status.rpc.url}",
        f"Source: {status.rpc.source} (port from {status.port.source})",
        f"Config: {status.config.path}",
    ]
