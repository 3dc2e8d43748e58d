"""Other gateways on this machine: service definitions and profiles, and their port clashes.

:func:`scan_services` reads unit files and plists for our install marker or a known gateway
name (ours under older names included); :func:`find_profiles` lists the profile state
directories in the home and the port each would use; :func:`port_collisions` (pure) says
which profiles would fight over a port, counting the derived ports (browser control = base+2,
canvas = base+4) from ``config.paths.derived_ports``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs

from ..config.load import load_file
from ..config.model import DEFAULT_PORT
from ..config.paths import (
    STATE_NAME,
    Paths,
    derived_ports,
    normalize_profile,
    profile_default_port,
    resolve_paths,
)
from ..config.settings import env_port
from ..errors import GatewayError
from ..instances import running_in
from .identity import Manager, Scope
from .installed import InstalledService, parse, read_text

GATEWAY_WORDS = ("smart-agent-neo", "openclaw", "clawdbot", "moltbot", "equabot")
MIN_SPACING = 20  # the runbook: leave at least 20 ports between instances
MAX_DEFINITION_BYTES = 256 * 1024


@attrs.frozen
class FoundService:
    name: str
    path: str
    scope: Scope
    manager: Manager
    ours: bool  # carries SMART_AGENT_NEO_SERVICE_MARKER
    profile: str | None
    config_path: str | None
    port: int | None
    detail: str


def _definition_files(directory: Path) -> list[Path]:
    try:
        return sorted(
            p for p in directory.iterdir() if p.suffix in (".service", ".plist") and p.is_file()
        )
    except OSError:
        return []


def scan_services(directories: Iterable[tuple[Scope, Path]]) -> list[FoundService]:
    found = []
    seen: set[Path] = set()
    for scope, directory in directories:
        for path in _definition_files(directory):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                if path.stat().st_size > MAX_DEFINITION_BYTES:
                    continue
            except OSError:
                continue
            text = read_text(path)
            if text is None or not any(word in text.lower() for word in GATEWAY_WORDS):
                continue
            manager: Manager = "launchd" if path.suffix == ".plist" else "systemd"
            service = parse(manager, text)
            found.append(_describe(path, scope, manager, service))
    return found


def _describe(
    path: Path, scope: Scope, manager: Manager, service: InstalledService
) -> FoundService:
    name = path.name.removesuffix(".service").removesuffix(".plist")
    if service.is_ours:
        detail = f"smart-agent-neo profile {service.profile or 'default'}"
    else:
        detail = "gateway-like service without the smart-agent-neo install marker"
    return FoundService(
        name=name,
        path=str(path),
        scope=scope,
        manager=manager,
        ours=service.is_ours,
        profile=service.profile,
        config_path=service.config_path,
        port=service.pinned_port,
        detail=detail,
    )


@attrs.frozen
class ProfilePort:
    profile: str | None
    port: int
    source: str  # "running", "service", "env", "config", "profile default", "default"


def find_profiles(
    home: Path,
    services: Sequence[FoundService] = (),
    *,
    current: Paths | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ProfilePort]:
    """Profiles with a state directory in ``home`` (or an installed service), with the port
    each one uses: a running gateway's (from its lock), else the one its service pins, else
    -- for ``current``, the CLI's own profile -- ``env``'s, else the profile's or config's.
    """
    names: dict[str | None, None] = {}
    try:
        entries = sorted(p.name for p in home.iterdir() if p.is_dir())
    except OSError:
        entries = []
    for entry in entries:
        if entry == STATE_NAME:
            names[None] = None
        elif entry.startswith(STATE_NAME + "-"):
            try:
                names[normalize_profile(entry[len(STATE_NAME) + 1 :])] = None
            except GatewayError:
                continue
    pinned = {}
    for service in services:
        if service.ours:
            names[service.profile] = None
            if service.port is not None:
                pinned[service.profile] = service.port
    if current is not None:
        # SMART_AGENT_NEO_STATE_DIR=~/.smart-agent-neo-a (the runbook's multi-gateway example)
        # makes the CLI profile "a" in all but name: match it by its state dir, or the
        # default profile would be reported as sharing a's port
        for name in names:
            if name != current.profile and resolve_paths(name, {}, home).state_dir == (
                current.state_dir
            ):
                current = attrs.evolve(current, profile=name)
                break
    return [_profile_port(p, home, pinned, current, env or {}) for p in names]


def _profile_port(
    profile: str | None,
    home: Path,
    pinned: Mapping[str | None, int],
    current: Paths | None,
    env: Mapping[str, str],
) -> ProfilePort:
    is_current = current is not None and current.profile == profile
    paths = current if is_current and current is not None else resolve_paths(profile, {}, home)
    live = [info.port for info in running_in(paths.state_dir) if info.port]
    if live:
        return ProfilePort(profile, live[0], "running")
    if profile in pinned:
        return ProfilePort(profile, pinned[profile], "service")
    if is_current:
        try:
            from_env = env_port(env)
        except GatewayError:
            from_env = None  # reported by the command itself
        if from_env is not None:
            return ProfilePort(profile, from_env, "env")
    default = profile_default_port(profile)
    if default is not None:
        return ProfilePort(profile, default, "profile default")
    try:
        loaded = load_file(paths.config_path, {})
    except GatewayError:
        return ProfilePort(profile, DEFAULT_PORT, "default")
    source = "config" if loaded.exists else "default"
    return ProfilePort(profile, loaded.config.gateway.port, source)


def _ports(port: int) -> dict[int, str]:
    derived = derived_ports(port)
    return {
        derived.gateway: "gateway",
        derived.browser_control: "browser control",
        derived.canvas: "canvas",
    }


def _name(profile: str | None) -> str:
    return profile or "default"


def port_collisions(profiles: Sequence[ProfilePort]) -> list[str]:
    """One warning per pair of profiles whose gateway or derived ports overlap or crowd."""
    warnings = []
    for a, b in itertools.combinations(profiles, 2):
        if a.port == b.port:
            warnings.append(
                f"profiles {_name(a.profile)} and {_name(b.profile)} both use port {a.port} "
                "(and its derived ports): give one of them another gateway.port"
            )
            continue
        ports_a, ports_b = _ports(a.port), _ports(b.port)
        shared = sorted(set(ports_a) & set(ports_b))
        if shared:
            clash = ", ".join(
                f"{p} ({ports_a[p]} of {_name(a.profile)}, {ports_b[p]} of {_name(b.profile)})"
                for p in shared
            )
            warnings.append(
                f"profiles {_name(a.profile)} and {_name(b.profile)} collide on port {clash}"
            )
        elif abs(a.port - b.port) < MIN_SPACING:
            warnings.append(
                f"profiles {_name(a.profile)} ({a.port}) and {_name(b.profile)} ({b.port}) are "
                f"less than {MIN_SPACING} ports apart; derived ports may clash"
            )
    return warnings
