"""``doctor [--fix] [--json]``: run the checks, render them, exit 1 if any fails.

``--repair`` is ``--fix``; ``--yes``/``--non-interactive`` are accepted for the reference's
scripts (doctor never asks); ``--generate-gateway-token`` fixes only a missing token;
``--deep`` and ``--force`` change nothing and are accepted for the same scripts: the
duplicate-service check always scans the system unit directories too, and ``--fix`` always
rewrites a drifted unit of ours (never a unit someone else wrote)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrs
from rich.console import Console, Group, RenderableType
from rich.text import Text

from ..config.paths import Paths, cli_command
from ..service.doctor import DoctorResult, doctor
from .progress import working
from .service import host_for

MARK = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}


def doctor_json(result: DoctorResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "checks": [
            {"id": c.id, "status": c.status, "message": c.message, "fixable": c.fixable}
            for c in result.checks
        ],
        "changes": result.changes,
    }


@attrs.frozen
class DoctorReport:
    result: DoctorResult
    fixed: bool
    profile: str | None = None

    def __rich__(self) -> RenderableType:
        lines: list[RenderableType] = []
        width = max(len(c.id) for c in self.result.checks)
        for check in self.result.checks:
            word, style = MARK[check.status]
            fix = cli_command(self.profile, "doctor --fix")
            hint = f" (fixable: {fix})" if check.fixable and not self.fixed else ""
            lines.append(
                Text.assemble(
                    (f"{word:>4} ", style), (f"{check.id:<{width}}  ", "bold"), check.message + hint
                )
            )
        if self.result.changes:
            lines.append(Text("Changed:", style="bold"))
            lines += [Text(f"  {change}") for change in self.result.changes]
        elif self.fixed:
            lines.append(Text("Nothing to fix."))
        return Group(*lines)


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    only = None
    if args.generate_gateway_token and not args.fix:
        only = frozenset({"auth.token"})  # OPERATIONS.md B.1: create one, touch nothing else
    fix = args.fix or args.generate_gateway_token
    with working(err, "Checking config, service and ports..."):
        result = doctor(host_for(args), paths, fix=fix, only=only)
    if args.json:
        print(json.dumps(doctor_json(result), indent=2, ensure_ascii=False))
    else:
        out.print(DoctorReport(result, fix, paths.profile))
    return 0 if result.ok else 1
