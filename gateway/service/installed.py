"""Read an installed unit or plist back: command, environment, install options, markers.

Best effort for files we did not write (``--deep`` scans, hand edits): anything that cannot
be parsed yields an empty command rather than an error, and the caller reports what it saw.
"""

from __future__ import annotations

import plistlib
import shlex
from collections.abc import Mapping
from pathlib import Path

import attrs

from ..config.paths import (
    ENV_CONFIG_PATH,
    ENV_PASSWORD,
    ENV_PORT,
    ENV_PROFILE,
    ENV_STATE_DIR,
    ENV_TOKEN,
)
from .identity import (
    ENV_SERVICE_KIND,
    ENV_SERVICE_MARKER,
    ENV_SERVICE_VERSION,
    MARKER,
    Manager,
)
from .spec import InstallOptions

SAFE_ENV_KEYS = (
    ENV_PROFILE,
    ENV_STATE_DIR,
    ENV_CONFIG_PATH,
    ENV_PORT,
    ENV_SERVICE_MARKER,
    ENV_SERVICE_KIND,
    ENV_SERVICE_VERSION,
)
SECRET_ENV_KEYS = (ENV_TOKEN, ENV_PASSWORD)


@attrs.frozen
class InstalledService:
    program_arguments: tuple[str, ...]
    working_directory: str | None
    environment: Mapping[str, str]

    @property
    def is_ours(self) -> bool:
        return self.environment.get(ENV_SERVICE_MARKER) == MARKER

    @property
    def safe_environment(self) -> dict[str, str]:
        return {k: self.environment[k] for k in SAFE_ENV_KEYS if k in self.environment}

    @property
    def embedded_secrets(self) -> list[str]:
        return [k for k in SECRET_ENV_KEYS if self.environment.get(k)]

    @property
    def profile(self) -> str | None:
        args = self.program_arguments
        for i, arg in enumerate(args[:-1]):
            if arg == "--profile":
                return args[i + 1]
        if "--dev" in args:
            return "dev"
        return self.environment.get(ENV_PROFILE) or None

    @property
    def version(self) -> str | None:
        return self.environment.get(ENV_SERVICE_VERSION)

    @property
    def config_path(self) -> str | None:
        return self.environment.get(ENV_CONFIG_PATH)

    @property
    def state_dir(self) -> str | None:
        return self.environment.get(ENV_STATE_DIR)

    @property
    def pinned_port(self) -> int | None:
        """``--port N`` in the command line, else ``SMART_AGENT_NEO_GATEWAY_PORT``."""
        args = self.program_arguments
        for i, arg in enumerate(args):
            value = args[i + 1] if arg == "--port" and i + 1 < len(args) else None
            if arg.startswith("--port="):
                value = arg.split("=", 1)[1]
            if value is not None and value.isdigit():
                return int(value)
        raw = self.environment.get(ENV_PORT, "")
        return int(raw) if raw.isdigit() else None

    @property
    def runs_gateway(self) -> bool:
        return "gateway" in self.program_arguments

    @property
    def options(self) -> InstallOptions:
        args = self.program_arguments
        port = None
        if "--port" in args[:-1]:
            raw = args[args.index("--port") + 1]
            port = int(raw) if raw.isdigit() else None
        return InstallOptions(port=port, allow_unconfigured="--allow-unconfigured" in args)


def _unescape(value: str) -> str:
    return value.replace("%%", "%")


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def parse_systemd(text: str) -> InstalledService:
    args: list[str] = []
    workdir: str | None = None
    env: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section != "[Service]":
            continue
        if key == "ExecStart" and value:
            words = [_unescape(a) for a in _split(value.lstrip("@-:+!"))]
            args = words[:1] + [a.replace("$$", "$") for a in words[1:]]
        elif key == "WorkingDirectory":
            workdir = _unescape(value.lstrip("-"))
        elif key == "Environment":
            for assignment in _split(value):
                name, sep, val = assignment.partition("=")
                if sep:
                    env[name] = _unescape(val)
    return InstalledService(tuple(args), workdir, env)


def parse_launchd(text: str) -> InstalledService:
    try:
        data = plistlib.loads(text.encode())
    except Exception:  # plistlib raises several unrelated types for bad input
        return InstalledService((), None, {})
    if not isinstance(data, dict):
        return InstalledService((), None, {})
    args = data.get("ProgramArguments") or ([data["Program"]] if "Program" in data else [])
    env = data.get("EnvironmentVariables") or {}
    workdir = data.get("WorkingDirectory")
    return InstalledService(
        tuple(str(a) for a in args),
        str(workdir) if workdir else None,
        {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
    )


def parse(manager: Manager, text: str) -> InstalledService:
    return parse_launchd(text) if manager == "launchd" else parse_systemd(text)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # missing, unreadable (a system unit we may not read): not there for us
        return None
