"""A replacement for the service runner: a small in-memory systemd (and launchd) that answers
the commands ``gateway/service`` sends, and records them.

It stands in for the OS service manager, which a test machine may not run (containers);
the production code path is unchanged apart from the runner it is handed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from gateway.service.host import Host
from gateway.service.runner import CommandResult, Runner

PROGRAM = ("/opt/neo/bin/smart-agent-neo",)
BUS_DOWN = "Failed to connect to bus: No medium found"


@attrs.define
class Unit:
    loaded: bool = False
    enabled: bool = False
    active: str = "inactive"
    sub: str = "dead"
    pid: int = 0
    exit_code: int | None = None
    failed: bool = False


@attrs.define
class FakeSystemd:
    """``systemctl [--user]``, ``loginctl`` and ``journalctl`` against in-memory units.

    ``unit_dirs`` are where unit files are looked up on daemon-reload; ``start_fails`` makes
    a start exit like a gateway that refused to start, with ``journal`` lines to find.
    """

    unit_dirs: list[Path]
    reachable: bool = True
    linger: str = "yes"
    start_fails: bool = False
    journal: list[str] = attrs.field(factory=list)
    units: dict[str, Unit] = attrs.field(factory=dict)
    calls: list[tuple[str, ...]] = attrs.field(factory=list)
    history: list[tuple[str, ...]] = attrs.field(factory=list)
    dry_run: bool = False
    next_pid: int = 4242

    def run(self, argv: Sequence[str], *, query: bool = False) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        if not query:
            self.history.append(args)
        if args[0] == "loginctl":
            if args[1] == "show-user":
                return CommandResult(args, 0, self.linger + "\n")
            self.linger = "yes"
            return CommandResult(args, 0)
        if args[0] == "journalctl":
            return CommandResult(args, 0, "".join(line + "\n" for line in self.journal))
        if not self.reachable:
            return CommandResult(args, 1, stderr=BUS_DOWN + "\n")
        rest = [a for a in args[1:] if a != "--user"]
        verb, names = rest[0], [a for a in rest[1:] if not a.startswith("--")]
        unit = self.units.setdefault(names[0], Unit()) if names else None
        if verb == "show":
            return CommandResult(args, 0, self._show(names[0]) if names else "Version=252\n")
        if verb == "daemon-reload":
            for name, state in self.units.items():
                state.loaded = self._file(name) is not None
            for directory in self.unit_dirs:
                for path in directory.glob("*.service"):
                    self.units.setdefault(path.name, Unit()).loaded = True
            return CommandResult(args, 0)
        assert unit is not None, args
        if not unit.loaded and verb not in ("reset-failed",):
            if self._file(names[0]) is None:
                return CommandResult(args, 1, stderr=f"Unit {names[0]} not found.\n")
            unit.loaded = True
        if verb == "enable":
            unit.enabled = True
            if "--now" in rest:
                return self._start(args, unit)
        elif verb == "disable":
            unit.enabled = False
            if "--now" in rest:
                self._stop(unit)
        elif verb in ("start", "restart"):
            if verb == "restart":
                self._stop(unit)
            return self._start(args, unit)
        elif verb == "stop":
            self._stop(unit)
        elif verb == "reset-failed":
            unit.failed = False
            if unit.active == "failed":
                unit.active, unit.sub = "inactive", "dead"
        return CommandResult(args, 0)

    def _file(self, name: str) -> Path | None:
        return next((d / name for d in self.unit_dirs if (d / name).exists()), None)

    def _start(self, args: tuple[str, ...], unit: Unit) -> CommandResult:
        if unit.failed:
            return CommandResult(args, 1, stderr="Start request repeated too quickly.\n")
        if self.start_fails:
            unit.active, unit.sub, unit.pid, unit.exit_code = "failed", "failed", 0, 75
            unit.failed = True
            return CommandResult(
                args, 1, stderr="Job for x.service failed because the control process exited.\n"
            )
        unit.active, unit.sub = "active", "running"
        unit.pid, self.next_pid = self.next_pid, self.next_pid + 1
        return CommandResult(args, 0)

    def _stop(self, unit: Unit) -> None:
        if unit.active == "active":
            unit.exit_code = 0
        unit.active, unit.sub, unit.pid = "inactive", "dead", 0

    def _show(self, name: str) -> str:
        unit = self.units.get(name)
        if unit is None or not unit.loaded:
            return "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\n"
        lines = {
            "LoadState": "loaded",
            "ActiveState": unit.active,
            "SubState": unit.sub,
            "MainPID": str(unit.pid),
            "ExecMainCode": "1" if unit.exit_code is not None else "0",
            "ExecMainStatus": str(unit.exit_code or 0),
            "Result": "exit-code" if unit.active == "failed" else "success",
            "NRestarts": "0",
            "UnitFileState": "enabled" if unit.enabled else "disabled",
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def commands(self) -> list[list[str]]:
        return [list(c) for c in self.history]


@attrs.define
class FakeLaunchd:
    """``launchctl`` for one LaunchAgent: bootstrap loads it (RunAtLoad starts it), bootout
    unloads it, print answers only while it is loaded."""

    loaded: bool = False
    calls: list[tuple[str, ...]] = attrs.field(factory=list)
    history: list[tuple[str, ...]] = attrs.field(factory=list)
    dry_run: bool = False

    def run(self, argv: Sequence[str], *, query: bool = False) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        if not query:
            self.history.append(args)
        verb = args[1]
        if verb == "bootstrap":
            self.loaded = True
        elif verb == "bootout":
            self.loaded = False
        elif verb == "print" and args[2].count("/") == 2 and not self.loaded:
            return CommandResult(args, 113, stderr="Could not find service\n")
        elif verb == "print" and args[2].count("/") == 2:
            return CommandResult(args, 0, f"{args[2]} = {{\n\tstate = running\n\tpid = 77\n}}\n")
        return CommandResult(args, 0)

    def commands(self) -> list[list[str]]:
        return [list(c) for c in self.history]


def make_host(
    home: Path,
    runner: Runner,
    *,
    platform: str = "linux",
    env: Mapping[str, str] | None = None,
    proc: Path = Path("/proc"),
) -> Host:
    """A host whose home, system unit directory and linger directory are all under ``home``."""
    return Host(
        platform=platform,
        home=home,
        user="alice",
        uid=os.getuid(),  # files the test creates are ours
        env=dict(env or {}),
        runner=runner,
        program=PROGRAM,
        system_unit_dir=home / "etc" / "systemd" / "system",
        system_scan_dirs=(),
        proc=proc,
        linger_dir=home / "var" / "lib" / "systemd" / "linger",
    )


def fake_systemd(home: Path, **kwargs: object) -> FakeSystemd:
    dirs = [home / ".config" / "systemd" / "user", home / "etc" / "systemd" / "system"]
    return FakeSystemd(dirs, **kwargs)  # type: ignore[arg-type]
