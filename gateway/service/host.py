"""The machine the CLI manages: platform, user, home, environment and the command runner.

``Host.current()`` describes the real machine; tests build a ``Host`` with a temp home, a
replaced runner and temp system directories, and the same code paths run against it.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

from ..config.paths import Paths
from .identity import Identity, Manager, Scope, identify, manager_for
from .runner import Runner, SystemRunner

CONSOLE_SCRIPT = "smart-agent-neo"


def gateway_program(executable: str) -> tuple[str, ...]:
    """How a unit starts this installation of the gateway.

    The console script installed next to the running interpreter is this very installation
    (a ``smart-agent-neo`` found on PATH may be another one); without it, the interpreter
    itself runs the package. The path is absolute but symlinks are kept: a virtual
    environment's ``python`` only works through its own path.
    """
    interpreter = os.path.abspath(executable)
    script = Path(interpreter).parent / CONSOLE_SCRIPT
    if os.access(script, os.X_OK):
        return (str(script),)
    return (interpreter, "-m", "gateway")


@attrs.frozen
class Host:
    platform: str
    home: Path
    user: str
    uid: int
    env: Mapping[str, str]
    runner: Runner
    program: tuple[str, ...]
    system_unit_dir: Path = Path("/etc/systemd/system")
    # where --deep and doctor look for other gateway-like definitions (besides the home's)
    system_scan_dirs: tuple[Path, ...] = (
        Path("/etc/systemd/system"),
        Path("/usr/lib/systemd/system"),
        Path("/lib/systemd/system"),
        Path("/Library/LaunchAgents"),
        Path("/Library/LaunchDaemons"),
    )
    proc: Path = Path("/proc")
    linger_dir: Path = Path("/var/lib/systemd/linger")

    @classmethod
    def current(cls, *, dry_run: bool = False) -> Host:
        uid = os.getuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = os.environ.get("USER", str(uid))
        home = Path.home()
        return cls(
            platform=sys.platform,
            home=home,
            user=user,
            uid=uid,
            env=dict(os.environ),
            runner=SystemRunner(dry_run=dry_run),
            program=gateway_program(sys.executable),
        )

    @property
    def manager(self) -> Manager:
        return manager_for(self.platform)

    def identity(self, paths: Paths, scope: Scope = "user") -> Identity:
        return identify(
            self.manager, scope, paths.profile, self.env, self.home, self.system_unit_dir
        )
