"""Terminal and JSON views of install/uninstall/start/stop/restart (Rich ``__rich__``)."""

from __future__ import annotations

from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.text import Text

from ..config.paths import cli_command
from ..service.control import ActionResult
from ..service.runtime_view import ServiceRuntime

_DONE = {
    "installed": "Installed",
    "updated": "Updated",
    "removed": "Removed",
    "started": "Started",
    "stopped": "Stopped",
    "restarted": "Restarted",
}


def runtime_line(runtime: ServiceRuntime) -> str:
    """``running (pid 4242, state active, sub running)``: the runbook's Runtime line."""
    parts = []
    if runtime.pid:
        parts.append(f"pid {runtime.pid}")
    if runtime.state and runtime.state != runtime.status:
        parts.append(f"state {runtime.state}")
    if runtime.sub_state:
        parts.append(f"sub {runtime.sub_state}")
    if runtime.last_exit and not runtime.looks_running:
        parts.append(f"last {runtime.last_exit.describe()}")
    if runtime.restarts:
        parts.append(f"{runtime.restarts} restarts")
    if runtime.detail:
        parts.append(runtime.detail)
    status = runtime.status if runtime.loaded else "not loaded"
    return status + (f" ({', '.join(parts)})" if parts else "")


def action_json(result: ActionResult) -> dict[str, Any]:
    identity, runtime = result.identity, result.runtime
    return {
        "ok": True,
        "action": result.action,
        "result": result.result,
        "dryRun": result.dry_run,
        "service": {
            "manager": identity.manager,
            "scope": identity.scope,
            "name": identity.unit,
            "path": str(identity.path),
            "loaded": runtime.loaded if runtime else None,
            "enabled": runtime.enabled if runtime else None,
            "status": runtime.status if runtime else None,
            "pid": runtime.pid if runtime else None,
        },
        "commands": result.commands,
        "changes": result.changes,
        "warnings": result.warnings,
    }


def dry_run_json(result: ActionResult) -> dict[str, Any]:
    """``install --dry-run --json``: exactly what would be written and run."""
    return {
        "unitPath": str(result.identity.path),
        "unit": result.unit_text,
        "commands": result.commands,
    }


@attrs.frozen
class ActionReport:
    result: ActionResult
    profile: str | None = None  # for the commands it suggests

    def __rich__(self) -> RenderableType:
        r = self.result
        identity = r.identity
        kind = f"{identity.label} service" if identity.manager == "systemd" else identity.label
        lines: list[RenderableType] = []
        if r.dry_run:
            lines.append(
                Text(f"Dry run: {r.action} {kind} {identity.unit} (nothing changed)", style="bold")
            )
            if r.unit_text is not None:
                lines.append(Text(f"Would write {identity.path}:"))
                lines.append(Text(r.unit_text.rstrip("\n"), style="dim"))
            lines += [Text(f"Would run: {' '.join(c)}") for c in r.commands] or [
                Text("Would run: nothing")
            ]
            return Group(*lines)
        if r.result == "unchanged":
            lines.append(
                Text(f"{kind.capitalize()} already installed and up to date: {identity.path}")
            )
            lines.append(
                Text(
                    f"Use `{cli_command(self.profile, 'gateway install --force')}` "
                    "to rewrite and restart it."
                )
            )
        elif r.result == "not-installed":
            lines.append(
                Text(
                    f"{kind.capitalize()} not installed ({identity.path} not found); nothing to {r.action}."
                )
            )
        else:
            target = identity.path if r.action in ("install", "uninstall") else identity.unit
            lines.append(Text.assemble((f"{_DONE[r.result]} {kind}: ", "bold green"), str(target)))
        lines += [Text(f"  {change}") for change in r.changes]
        lines += [Text(f"Ran: {' '.join(c)}", style="dim") for c in r.commands]
        if r.runtime is not None:
            lines.append(Text(f"Runtime: {runtime_line(r.runtime)}"))
        lines += [Text.assemble(("Warning: ", "yellow"), w) for w in r.warnings]
        return Group(*lines)


@attrs.frozen
class ErrorReport:
    message: str
    hints: list[str]

    def __rich__(self) -> RenderableType:
        lines = [Text(self.message)]
        lines += [Text(f"Tip: {hint}") for hint in self.hints]
        return Group(*lines)
