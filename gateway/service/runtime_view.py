"""The supervisor's view of one service, common to systemd and launchd (pure types).

Exit statuses are explained with the gateway's fixed contract: 0 clean stop, 78 invalid
config (never restarted), 75 temporary failure such as a busy port (retried), 1 anything else.
"""

from __future__ import annotations

import signal
from typing import Literal

import attrs

from ..errors import EX_CONFIG, EX_FAILURE, EX_OK, EX_TEMPFAIL

ExitKind = Literal["exited", "killed", "dumped"]
RunStatus = Literal["running", "starting", "restarting", "stopping", "stopped", "failed", "unknown"]

EXIT_MEANINGS = {
    EX_OK: "clean stop",
    EX_FAILURE: "failed to start or crashed",
    EX_TEMPFAIL: "temporary failure, e.g. port busy (restarted)",
    EX_CONFIG: "invalid config (not restarted until fixed)",
    143: "stopped by SIGTERM",
}


@attrs.frozen
class ExitInfo:
    kind: ExitKind
    code: int  # exit status, or signal number when killed/dumped

    @property
    def meaning(self) -> str:
        if self.kind == "exited":
            return EXIT_MEANINGS.get(self.code, "error")
        try:
            name = signal.Signals(self.code).name
        except ValueError:
            name = f"signal {self.code}"
        return f"killed by {name}" + (" (core dumped)" if self.kind == "dumped" else "")

    def describe(self) -> str:
        if self.kind == "exited":
            return f"exit {self.code} ({self.meaning})"
        return self.meaning


@attrs.frozen
class ServiceRuntime:
    loaded: bool
    enabled: bool | None
    status: RunStatus
    state: str | None = None  # ActiveState / launchd state, verbatim
    sub_state: str | None = None
    pid: int | None = None
    last_exit: ExitInfo | None = None
    restarts: int | None = None
    detail: str | None = None

    @property
    def looks_running(self) -> bool:
        return self.status in ("running", "starting", "restarting")
