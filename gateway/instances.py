"""Where a profile's gateway listens: where the running one is, else where one would start.

The running gateway's lock file records its address once it serves (``lock.serving``), so a
gateway started with ``--port 19789`` is found again by every command of its profile --
whatever the config or the environment say. When none runs, the start-up precedence
applies: ``SMART_AGENT_NEO_GATEWAY_PORT`` > the profile's port (dev: 19001) > ``gateway.port``.
The RPC commands' default target, ``status``, ``gateway status``, ``doctor`` and the
profile collision warnings all ask here, so they cannot disagree about a port.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from .config.model import Config
from .config.paths import ENV_PORT, Paths, profile_default_port
from .config.settings import env_port, format_host
from .lock import LockInfo, lock_path, running_holder


def client_host(bind_host: str) -> str:
    """The address a client on this machine uses for a gateway bound to ``bind_host``."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def client_url(bind_host: str, port: int) -> str:
    return f"ws://{format_host(client_host(bind_host))}:{port}"


def running(paths: Paths) -> LockInfo | None:
    """The live gateway of this profile's config, from its lock (``None``: none runs)."""
    return running_holder(lock_path(paths))


def running_in(state_dir: Path) -> list[LockInfo]:
    """Every live gateway whose lock is in ``state_dir`` (any config path)."""
    try:
        locks = sorted(state_dir.glob("gateway.*.lock"))
    except OSError:
        return []
    return [info for path in locks if (info := running_holder(path)) is not None]


@attrs.frozen
class PortChoice:
    port: int
    source: str  # "running gateway (pid N)" | ENV_PORT | "profile <name>" | "config"
    url: str | None = None  # the running gateway's own address, when that is the source


def configured_port(paths: Paths, env: Mapping[str, str], config: Config) -> PortChoice:
    """Where a gateway of this profile would listen if it started now."""
    from_env = env_port(env)
    if from_env is not None:
        return PortChoice(from_env, ENV_PORT)
    default = profile_default_port(paths.profile)
    if default is not None:
        return PortChoice(default, f"profile {paths.profile}")
    return PortChoice(config.gateway.port, "config")


def effective_port(paths: Paths, env: Mapping[str, str], config: Config) -> PortChoice:
    """Where this profile's gateway listens: the running one's port, else the configured."""
    info = running(paths)
    if info is not None and info.port:
        return PortChoice(info.port, f"running gateway (pid {info.pid})", info.url)
    return configured_port(paths, env, config)
