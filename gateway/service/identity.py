"""What a profile's service is called and where its definition lives (pure).

systemd: ``smart-agent-neo-gateway[-<profile>].service`` in ``~/.config/systemd/user`` (or
the system unit directory with ``--system``); launchd: the LaunchAgent
``ai.smartagentneo.gateway`` / ``ai.smartagentneo.<profile>``. ``SMART_AGENT_NEO_SYSTEMD_UNIT``
and ``SMART_AGENT_NEO_LAUNCHD_LABEL`` override the name for the default profile only, so two
profiles can never be pointed at one unit by a stray variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from ..config.paths import ENV_PREFIX
from .errors import ServiceError

Manager = Literal["systemd", "launchd"]
Scope = Literal["user", "system"]

SYSTEMD_BASE = "smart-agent-neo-gateway"
LAUNCHD_BASE = "ai.smartagentneo"
LAUNCHD_DEFAULT = LAUNCHD_BASE + ".gateway"

ENV_SYSTEMD_UNIT = ENV_PREFIX + "SYSTEMD_UNIT"
ENV_LAUNCHD_LABEL = ENV_PREFIX + "LAUNCHD_LABEL"
ENV_SERVICE_MARKER = ENV_PREFIX + "SERVICE_MARKER"
ENV_SERVICE_KIND = ENV_PREFIX + "SERVICE_KIND"
ENV_SERVICE_VERSION = ENV_PREFIX + "SERVICE_VERSION"
MARKER = "smart-agent-neo"
KIND = "gateway"


@attrs.frozen
class Identity:
    manager: Manager
    scope: Scope
    name: str  # systemd unit name without ".service", or the launchd label
    path: Path  # the unit file or plist

    @property
    def unit(self) -> str:
        """The name systemctl/launchctl expect."""
        return f"{self.name}.service" if self.manager == "systemd" else self.name

    @property
    def label(self) -> str:
        return "systemd" if self.manager == "systemd" else "LaunchAgent"


def manager_for(platform: str) -> Manager:
    if platform.startswith("linux"):
        return "systemd"
    if platform == "darwin":
        return "launchd"
    raise ServiceError(
        f"service management is not supported on {platform}",
        hints=["run `smart-agent-neo gateway run` under your own supervisor"],
    )


def systemd_unit_name(profile: str | None, env: Mapping[str, str]) -> str:
    override = env.get(ENV_SYSTEMD_UNIT, "").strip()
    if override and profile is None:
        return override.removesuffix(".service")
    return SYSTEMD_BASE + (f"-{profile}" if profile else "")


def launchd_label(profile: str | None, env: Mapping[str, str]) -> str:
    override = env.get(ENV_LAUNCHD_LABEL, "").strip()
    if override and profile is None:
        return override
    if profile is None:
        return LAUNCHD_DEFAULT
    if profile.lower() == "gateway":
        # ai.smartagentneo.<profile> would be the default profile's label
        raise ServiceError(
            'profile name "gateway" collides with the default LaunchAgent label',
            hints=["use another --profile name"],
        )
    return f"{LAUNCHD_BASE}.{profile}"


def user_unit_dir(home: Path) -> Path:
    return home / ".config" / "systemd" / "user"


def identify(
    manager: Manager,
    scope: Scope,
    profile: str | None,
    env: Mapping[str, str],
    home: Path,
    system_unit_dir: Path,
) -> Identity:
    if manager == "launchd":
        if scope == "system":
            raise ServiceError(
                "--system is only supported with systemd; on macOS the gateway is a LaunchAgent"
            )
        label = launchd_label(profile, env)
        return Identity(
            "launchd", "user", label, home / "Library" / "LaunchAgents" / f"{label}.plist"
        )
    name = systemd_unit_name(profile, env)
    directory = system_unit_dir if scope == "system" else user_unit_dir(home)
    return Identity("systemd", scope, name, directory / f"{name}.service")
