"""launchd driver: a per-user LaunchAgent in the ``gui/<uid>`` domain.

``stop`` is ``bootout`` (unloaded until ``start`` or the next login; the plist stays), so
``start`` bootstraps again when the agent is not loaded, and first clears a persisted
``disable`` -- a stopped gateway can always be started without reinstalling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..config.paths import cli_command
from .errors import ManagerUnavailableError
from .host import Host
from .identity import Identity
from .runtime_view import ExitInfo, RunStatus, ServiceRuntime

_FIELD = re.compile(r"^\s*(state|pid|last exit code|runs)\s*=\s*(.+?)\s*$")
_STATUS: dict[str, RunStatus] = {
    "running": "running",
    "spawn scheduled": "restarting",
    "waiting": "stopped",
    "not running": "stopped",
    "exited": "stopped",
}
LOG_TAIL_BYTES = 64 * 1024


def parse_print(text: str) -> ServiceRuntime:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match and match.group(1) not in fields:  # the first block is the service itself
            fields[match.group(1)] = match.group(2)
    state = fields.get("state")
    pid = fields.get("pid", "")
    code = re.match(r"-?\d+", fields.get("last exit code", ""))
    runs = fields.get("runs", "")
    return ServiceRuntime(
        loaded=True,
        enabled=None,
        status=_STATUS.get(state or "", "unknown"),
        state=state,
        pid=int(pid) if pid.isdigit() else None,
        last_exit=ExitInfo("exited", int(code.group())) if code else None,
        restarts=max(int(runs) - 1, 0) if runs.isdigit() else None,
    )


def _tail_lines(path: Path, limit: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-limit:]


class Launchd:
    def __init__(self, host: Host, logs_dir: Path, profile: str | None = None) -> None:
        self.host = host
        self.profile = profile  # for the commands the hints suggest
        self.domain = f"gui/{host.uid}"
        self.logs_dir = logs_dir

    def _target(self, identity: Identity) -> str:
        return f"{self.domain}/{identity.name}"

    def connect(self) -> None:
        probe = self.host.runner.run(["launchctl", "print", self.domain], query=True)
        if probe.ok:
            return
        if probe.code == 127:
            message = "launchctl not found: launchd is needed to supervise the gateway on macOS"
        else:
            message = f"launchd domain {self.domain} cannot be reached ({probe.detail})"
        raise ManagerUnavailableError(
            message,
            hints=[
                "LaunchAgents need a logged-in GUI session (not only SSH)",
                "or run the gateway in the foreground: " + cli_command(self.profile, "gateway run"),
            ],
        )

    def install_commands(self, identity: Identity, *, fresh: bool) -> list[list[str]]:
        target = self._target(identity)
        load = [
            ["launchctl", "enable", target],
            ["launchctl", "bootstrap", self.domain, str(identity.path)],
        ]
        return load if fresh else [["launchctl", "bootout", target], *load]

    def uninstall_commands(self, identity: Identity) -> list[list[str]]:
        return [["launchctl", "bootout", self._target(identity)]]

    def after_uninstall_commands(self, identity: Identity) -> list[list[str]]:
        return []

    def start_commands(self, identity: Identity, *, loaded: bool) -> list[list[str]]:
        target = self._target(identity)
        commands = [["launchctl", "enable", target]]
        if not loaded:
            commands.append(["launchctl", "bootstrap", self.domain, str(identity.path)])
        return [*commands, ["launchctl", "kickstart", target]]

    def stop_commands(self, identity: Identity) -> list[list[str]]:
        return [["launchctl", "bootout", self._target(identity)]]

    def restart_commands(self, identity: Identity, *, loaded: bool) -> list[list[str]]:
        target = self._target(identity)
        if not loaded:
            return [
                ["launchctl", "enable", target],
                ["launchctl", "bootstrap", self.domain, str(identity.path)],
            ]
        return [["launchctl", "enable", target], ["launchctl", "kickstart", "-k", target]]

    def best_effort(self, argv: Sequence[str]) -> bool:
        return "bootout" in argv  # "not loaded" is the state we wanted anyway

    def runtime(self, identity: Identity) -> ServiceRuntime:
        result = self.host.runner.run(["launchctl", "print", self._target(identity)], query=True)
        if not result.ok:
            return ServiceRuntime(loaded=False, enabled=None, status="stopped")
        return parse_print(result.stdout)

    def log_lines(self, identity: Identity, limit: int) -> list[str]:
        return [
            *_tail_lines(self.logs_dir / "gateway.log", limit),
            *_tail_lines(self.logs_dir / "gateway.err.log", limit),
        ]

    def log_hint(self, identity: Identity) -> str:
        return f"{self.logs_dir / 'gateway.err.log'} and {self.logs_dir / 'gateway.log'}"
