"""``gateway install|uninstall|start|stop|restart``: parse, call service control, render.

Expected failures (no service manager, a failed ``systemctl`` step, an invalid config) print
the message and ``Tip:`` lines -- or ``{"ok": false, "error", "hints"}`` with ``--json`` --
and exit non-zero: 69 when the service manager cannot be reached, 78 for an invalid config,
1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import attrs
from rich.console import Console

from ..config.paths import Paths
from ..errors import GatewayError
from ..service import control
from ..service.control import ActionResult
from ..service.errors import ManagerUnavailableError, ServiceError
from ..service.host import Host
from ..service.identity import Scope
from ..service.runner import SystemRunner
from .control_view import ActionReport, ErrorReport, action_json, dry_run_json
from .progress import working


def host_for(args: argparse.Namespace) -> Host:
    """The injected host (tests) or this machine; ``--dry-run`` swaps in a recording runner."""
    dry_run = bool(getattr(args, "dry_run", False))
    host: Host | None = getattr(args, "machine", None)
    if host is None:
        return Host.current(dry_run=dry_run)
    return attrs.evolve(host, runner=SystemRunner(dry_run=True)) if dry_run else host


def _scope(args: argparse.Namespace) -> Scope:
    return "system" if args.system else "user"


def _perform(
    args: argparse.Namespace,
    paths: Paths,
    out: Console,
    err: Console,
    action: str,
    call: Callable[[Host], ActionResult],
) -> int:
    try:
        with working(err, f"gateway {action}: waiting for the service manager..."):
            result = call(host_for(args))
    except GatewayError as exc:
        hints = exc.hints if isinstance(exc, ServiceError) else []
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        if args.json:
            body: dict[str, object] = {
                "ok": False,
                "action": action,
                "error": message,
                "hints": hints,
            }
            if isinstance(exc, ManagerUnavailableError):
                body["written"] = exc.written
            print(json.dumps(body, indent=2, ensure_ascii=False))
        else:
            err.print(ErrorReport(message, hints))
        return exc.exit_code
    if args.json:
        payload = (
            dry_run_json(result) if result.dry_run and action == "install" else action_json(result)
        )
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        out.print(ActionReport(result, paths.profile))
    return 0


def install_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    def call(host: Host) -> ActionResult:
        options = control.install_options(host, args.port, args.allow_unconfigured)
        return control.install(host, paths, scope=_scope(args), options=options, force=args.force)

    return _perform(args, paths, out, err, "install", call)


def uninstall_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    return _perform(
        args,
        paths,
        out,
        err,
        "uninstall",
        lambda host: control.uninstall(host, paths, scope=_scope(args)),
    )


def control_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    action: str = args.gateway_command
    return _perform(
        args,
        paths,
        out,
        err,
        action,
        lambda host: control.control(host, paths, action, scope=_scope(args)),
    )
