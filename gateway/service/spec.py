"""Everything a unit or plist says, decided in one pure function: :func:`build_spec`.

The unit runs ``<program> [--profile P] gateway run [--port N] [--allow-unconfigured]`` in
the foreground. It pins the profile's state dir and config path in the environment, so the
service reads the same files as the CLI that installed it, and carries the install markers.
It never carries a secret: the gateway reads its token from the config, from the 0600 token
file in the state dir, or from the 0600 ``gateway.env`` that systemd loads
(``EnvironmentFile=``).
"""

from __future__ import annotations

import math
import os

import attrs

from ..config.paths import ENV_CONFIG_PATH, ENV_PORT, ENV_PROFILE, ENV_STATE_DIR, Paths
from .identity import (
    ENV_LAUNCHD_LABEL,
    ENV_SERVICE_KIND,
    ENV_SERVICE_MARKER,
    ENV_SERVICE_VERSION,
    ENV_SYSTEMD_UNIT,
    KIND,
    MARKER,
    Identity,
)

ENV_FILE_NAME = "gateway.env"
MIN_STOP_TIMEOUT_S = 30
STOP_TIMEOUT_MARGIN_S = 10
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
MACOS_PATH = ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin")


@attrs.frozen
class InstallOptions:
    """What the user chose at install time; ``doctor`` recovers them from an installed unit."""

    port: int | None = None  # pin --port (else the gateway resolves env/config itself)
    allow_unconfigured: bool = False


@attrs.frozen
class ServiceSpec:
    identity: Identity
    description: str
    program_arguments: tuple[str, ...]
    working_directory: str
    environment: tuple[tuple[str, str], ...]
    environment_file: str
    timeout_stop_sec: int
    user: str | None  # User= of a system unit
    stdout_path: str  # launchd only: systemd sends output to the journal
    stderr_path: str


def description(profile: str | None, version: str) -> str:
    parts = ([f"profile: {profile}"] if profile else []) + [f"v{version}"]
    return f"Smart Agent Neo Gateway ({', '.join(parts)})"


def stop_timeout_sec(shutdown_timeout_ms: int) -> int:
    """The supervisor's kill deadline must outlast the gateway's own graceful cap."""
    return max(MIN_STOP_TIMEOUT_S, math.ceil(shutdown_timeout_ms / 1000) + STOP_TIMEOUT_MARGIN_S)


def program_arguments(
    program: tuple[str, ...], profile: str | None, options: InstallOptions
) -> tuple[str, ...]:
    args = list(program)
    if profile:
        args += ["--profile", profile]
    args += ["gateway", "run"]
    if options.port is not None:
        args += ["--port", str(options.port)]
    if options.allow_unconfigured:
        args.append("--allow-unconfigured")
    return tuple(args)


def search_path(identity: Identity, program: tuple[str, ...], home: str) -> str:
    """A small PATH: the program's own directory, the user's bin dirs, then the system's."""
    dirs = [os.path.dirname(program[0]), f"{home}/.local/bin"]
    dirs += MACOS_PATH if identity.manager == "launchd" else SYSTEM_PATH
    return ":".join(dict.fromkeys(d for d in dirs if d))


def build_spec(
    identity: Identity,
    paths: Paths,
    *,
    program: tuple[str, ...],
    home: str,
    user: str,
    version: str,
    options: InstallOptions,
    shutdown_timeout_ms: int,
    port: int | None = None,
) -> ServiceSpec:
    """``port``: the port the service will listen on, resolved at install time (the
    ``--port`` pinned in ``options``, else the profile's, else the config's). It is written
    as ``SMART_AGENT_NEO_GATEWAY_PORT`` (OPERATIONS.md E.1/E.2), so ``doctor`` sees when
    the config has moved on (the unit then differs from what install would write)."""
    env: list[tuple[str, str]] = [
        ("HOME", home),
        ("PATH", search_path(identity, program, home)),
        ("PYTHONUNBUFFERED", "1"),  # log lines reach the journal as they happen
    ]
    if paths.profile:
        env.append((ENV_PROFILE, paths.profile))
    env += [(ENV_STATE_DIR, str(paths.state_dir)), (ENV_CONFIG_PATH, str(paths.config_path))]
    if port is not None:
        env.append((ENV_PORT, str(port)))
    if identity.manager == "systemd":
        env.append((ENV_SYSTEMD_UNIT, identity.unit))
    else:
        env.append((ENV_LAUNCHD_LABEL, identity.name))
    env += [(ENV_SERVICE_MARKER, MARKER), (ENV_SERVICE_KIND, KIND), (ENV_SERVICE_VERSION, version)]
    logs = paths.state_dir / "logs"
    return ServiceSpec(
        identity=identity,
        description=description(paths.profile, version),
        program_arguments=program_arguments(program, paths.profile, options),
        working_directory=home,
        environment=tuple(env),
        environment_file=str(paths.state_dir / ENV_FILE_NAME),
        timeout_stop_sec=stop_timeout_sec(shutdown_timeout_ms),
        user=user if identity.scope == "system" else None,
        stdout_path=str(logs / "gateway.log"),
        stderr_path=str(logs / "gateway.err.log"),
    )
