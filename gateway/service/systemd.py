"""systemd driver: the ``systemctl``/``loginctl``/``journalctl`` commands and their parsing.

User scope talks to the user's manager (``systemctl --user``). When that bus is not
reachable because the login has no ``XDG_RUNTIME_DIR`` (``su``, some SSH setups), the
manager may still run: ``systemctl --machine <user>@ --user`` reaches it, and is tried once.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config.paths import cli_command
from .errors import ManagerUnavailableError
from .host import Host
from .identity import Identity, Scope
from .runner import CommandResult
from .runtime_view import ExitInfo, ExitKind, RunStatus, ServiceRuntime

SHOW_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "ExecMainCode",
    "ExecMainStatus",
    "Result",
    "NRestarts",
    "UnitFileState",
)
_STATUS: dict[str, RunStatus] = {
    "active": "running",
    "reloading": "running",
    "activating": "starting",
    "deactivating": "stopping",
    "inactive": "stopped",
    "failed": "failed",
}
_EXIT_KIND: dict[str, ExitKind] = {"1": "exited", "2": "killed", "3": "dumped"}  # CLD_* codes


def parse_show(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def _int(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


def runtime_from_show(props: dict[str, str]) -> ServiceRuntime:
    load = props.get("LoadState")
    if load in (None, "not-found"):
        return ServiceRuntime(loaded=False, enabled=None, status="stopped", state=load)
    active = props.get("ActiveState", "")
    sub = props.get("SubState") or None
    status: RunStatus = _STATUS.get(active, "unknown")
    if active == "activating" and sub == "auto-restart":
        status = "restarting"  # waiting RestartSec after an exit
    pid = _int(props.get("MainPID"))
    kind = _EXIT_KIND.get(props.get("ExecMainCode", ""))
    code = _int(props.get("ExecMainStatus"))
    last_exit = None
    if kind and code is not None and status not in ("running", "starting"):
        last_exit = ExitInfo(kind, code)
    file_state = props.get("UnitFileState") or None
    result = props.get("Result")
    return ServiceRuntime(
        loaded=True,
        enabled=None
        if file_state is None
        else file_state in ("enabled", "enabled-runtime", "linked"),
        status=status,
        state=active or None,
        sub_state=sub,
        pid=pid or None,
        last_exit=last_exit,
        restarts=_int(props.get("NRestarts")),
        detail=f"result {result}" if result and result != "success" else None,
    )


class Systemd:
    def __init__(self, host: Host, scope: Scope, profile: str | None = None) -> None:
        self.host = host
        self.scope: Scope = scope
        self.profile = profile  # for the commands the hints suggest
        self.base = ["systemctl", "--user"] if scope == "user" else ["systemctl"]

    def _ctl(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def _query(self, argv: Sequence[str]) -> CommandResult:
        return self.host.runner.run(argv, query=True)

    def connect(self) -> None:
        probe = self._query(self._ctl("show", "--property=Version"))
        if probe.ok:
            return
        if self.scope == "user" and probe.code != 127 and not self.host.env.get("XDG_RUNTIME_DIR"):
            via_machine = ["systemctl", "--machine", f"{self.host.user}@", "--user"]
            if self._query([*via_machine, "show", "--property=Version"]).ok:
                self.base = via_machine
                return
        raise ManagerUnavailableError(self.unavailable_message(probe), hints=self._hints(probe))

    def unavailable_message(self, probe: CommandResult) -> str:
        # the reference's wording first (OPERATIONS.md E.2, I), then ours
        if probe.code == 127:
            return (
                "systemctl not available; systemd user services are required on Linux "
                "(systemctl not found)"
            )
        who = "the systemd user manager" if self.scope == "user" else "systemd"
        return f"{' '.join(self.base)} unavailable: {probe.detail} ({who} cannot be reached)"

    def _hints(self, probe: CommandResult) -> list[str]:
        run = cli_command(self.profile, "gateway run")
        if self.scope == "system":
            return [f"run the gateway in the foreground instead: {run}"]
        return [
            "no systemd user manager runs for this login (a container, or a session without one)",
            f"on a server: sudo loginctl enable-linger {self.host.user}, then log in again",
            f"or install a system unit: sudo {cli_command(self.profile, 'gateway install --system')}",
            f"or run the gateway in the foreground: {run}",
        ]

    # -- what each action runs ------------------------------------------------------------

    def install_commands(self, identity: Identity, *, fresh: bool) -> list[list[str]]:
        if fresh:
            return [self._ctl("daemon-reload"), self._ctl("enable", "--now", identity.unit)]
        return [
            self._ctl("daemon-reload"),
            self._ctl("reset-failed", identity.unit),
            self._ctl("enable", identity.unit),
            self._ctl("restart", identity.unit),
        ]

    def uninstall_commands(self, identity: Identity) -> list[list[str]]:
        return [self._ctl("disable", "--now", identity.unit)]

    def after_uninstall_commands(self, identity: Identity) -> list[list[str]]:
        return [self._ctl("daemon-reload"), self._ctl("reset-failed", identity.unit)]

    def start_commands(self, identity: Identity, *, loaded: bool) -> list[list[str]]:
        # a unit that hit a failure is started afresh, never refused as start-limited
        return [self._ctl("reset-failed", identity.unit), self._ctl("start", identity.unit)]

    def stop_commands(self, identity: Identity) -> list[list[str]]:
        # stop, not disable: the unit still starts at boot; clear a failed state it ends in
        return [self._ctl("stop", identity.unit), self._ctl("reset-failed", identity.unit)]

    def restart_commands(self, identity: Identity, *, loaded: bool) -> list[list[str]]:
        return [self._ctl("reset-failed", identity.unit), self._ctl("restart", identity.unit)]

    def best_effort(self, argv: Sequence[str]) -> bool:
        return "reset-failed" in argv

    # -- reading state --------------------------------------------------------------------

    def runtime(self, identity: Identity) -> ServiceRuntime:
        props = ",".join(SHOW_PROPERTIES)
        result = self._query(self._ctl("show", identity.unit, f"--property={props}", "--no-pager"))
        if not result.ok:
            return ServiceRuntime(
                loaded=False, enabled=None, status="unknown", detail=result.detail
            )
        return runtime_from_show(parse_show(result.stdout))

    def linger(self) -> bool | None:
        result = self._query(
            ["loginctl", "show-user", self.host.user, "--property=Linger", "--value"]
        )
        if result.ok and result.stdout.strip() in ("yes", "no"):
            return result.stdout.strip() == "yes"
        # loginctl needs logind; the marker file is what enable-linger writes
        return (self.host.linger_dir / self.host.user).exists() or None

    def enable_linger_command(self) -> list[str]:
        return ["loginctl", "enable-linger", self.host.user]

    def log_lines(self, identity: Identity, limit: int) -> list[str]:
        scope = ["--user"] if self.scope == "user" else []
        argv = [
            "journalctl",
            *scope,
            "-u",
            identity.unit,
            "-n",
            str(limit),
            "--no-pager",
            "-o",
            "cat",
        ]
        result = self._query(argv)
        return result.stdout.splitlines() if result.ok else []

    def log_hint(self, identity: Identity) -> str:
        scope = " --user" if self.scope == "user" else ""
        return f"journalctl{scope} -u {identity.unit} -n 200 --no-pager"
