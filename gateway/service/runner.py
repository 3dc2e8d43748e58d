"""The one way service code runs ``systemctl``, ``launchctl``, ``loginctl`` and ``journalctl``.

Everything that talks to the service manager takes a :class:`Runner`, so tests replace it and
``--dry-run`` swaps in a runner that records instead of executing. A command never raises for
an ordinary failure: a missing binary is exit 127, a hang is exit 124, and the caller turns
the result into a message that names the command.

Commands are marked ``query=True`` when they only read state; a dry run skips them (nothing
is executed at all) and does not list them, so the recorded history is exactly what a real
run would change.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Protocol

import attrs

COMMAND_TIMEOUT_S = 90.0  # > TimeoutStartSec: `systemctl start` of a Type=notify unit waits


@attrs.frozen
class CommandResult:
    argv: tuple[str, ...]
    code: int
    stdout: str = ""
    stderr: str = ""
    skipped: bool = False  # dry run: not executed

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def detail(self) -> str:
        """The first meaningful line of output, for one-line error messages."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit status {self.code}"

    @property
    def command(self) -> str:
        return " ".join(self.argv)


class Runner(Protocol):
    @property
    def dry_run(self) -> bool: ...

    @property
    def history(self) -> list[tuple[str, ...]]:
        """Every changing command run (or, in a dry run, that would have run), in order."""
        ...

    def run(self, argv: Sequence[str], *, query: bool = False) -> CommandResult: ...


@attrs.define
class SystemRunner:
    """Runs commands with ``subprocess``; stdin is closed so nothing can prompt."""

    dry_run: bool = False
    timeout: float = COMMAND_TIMEOUT_S
    history: list[tuple[str, ...]] = attrs.field(factory=list)

    def run(self, argv: Sequence[str], *, query: bool = False) -> CommandResult:
        args = tuple(argv)
        if self.dry_run:
            if not query:
                self.history.append(args)
            return CommandResult(args, 0, skipped=True)
        if not query:
            self.history.append(args)
        try:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(args, 127, stderr=f"{args[0]}: command not found")
        except subprocess.TimeoutExpired:
            return CommandResult(args, 124, stderr=f"{args[0]}: timed out after {self.timeout:g}s")
        except OSError as exc:
            return CommandResult(args, 126, stderr=f"{args[0]}: {exc.strerror}")
        return CommandResult(args, done.returncode, done.stdout, done.stderr)
