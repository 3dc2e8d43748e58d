"""Where a profile keeps its state and config, and which ports it derives.

Pure: every function takes the environment and home directory it should use.
Profile ``default`` (any case) is the unnamed profile; ``dev`` also moves the port to 19001.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from ..errors import GatewayError
from .model import DEV_PORT

ENV_PREFIX = "SMART_AGENT_NEO_"
ENV_STATE_DIR = ENV_PREFIX + "STATE_DIR"
ENV_CONFIG_PATH = ENV_PREFIX + "CONFIG_PATH"
ENV_PROFILE = ENV_PREFIX + "PROFILE"
ENV_HOME = ENV_PREFIX + "HOME"
ENV_PORT = ENV_PREFIX + "GATEWAY_PORT"
ENV_TOKEN = ENV_PREFIX + "GATEWAY_TOKEN"
ENV_PASSWORD = ENV_PREFIX + "GATEWAY_PASSWORD"
ENV_URL = ENV_PREFIX + "GATEWAY_URL"
ENV_SKIP_CANVAS_HOST = ENV_PREFIX + "SKIP_CANVAS_HOST"
ENV_CANVAS_HOST_PORT = ENV_PREFIX + "CANVAS_HOST_PORT"

CLI_NAME = "smart-agent-neo"
STATE_NAME = ".smart-agent-neo"
CONFIG_NAME = "smart-agent-neo.json"
_PROFILE_RE = re.compile(r"[A-Za-z0-9_-]+")


@attrs.frozen
class Paths:
    profile: str | None
    state_dir: Path
    config_path: Path

    @property
    def token_file(self) -> Path:
        return self.state_dir / "gateway.token"

    def cli(self, words: str) -> str:
        """A command for this profile, runnable as printed (``--dev``/``--profile`` kept)."""
        return cli_command(self.profile, words)


def cli_command(profile: str | None, words: str) -> str:
    """``smart-agent-neo [--dev | --profile NAME] WORDS``: what a printed next step says."""
    flag = "--dev " if profile == "dev" else (f"--profile {profile} " if profile else "")
    return f"{CLI_NAME} {flag}{words}"


def normalize_profile(name: str | None) -> str | None:
    if name is None:
        return None
    if not name:
        raise GatewayError("--profile requires a value")
    if not _PROFILE_RE.fullmatch(name):
        raise GatewayError('Invalid --profile (use letters, numbers, "_", "-" only)')
    return None if name.lower() == "default" else name


def resolve_paths(profile: str | None, env: Mapping[str, str], home: Path) -> Paths:
    """State dir and config path: env overrides beat the profile's defaults."""
    profile = normalize_profile(profile if profile is not None else env.get(ENV_PROFILE) or None)
    base_home = Path(env[ENV_HOME]).expanduser() if env.get(ENV_HOME) else home
    default_state = base_home / (STATE_NAME + (f"-{profile}" if profile else ""))
    state_dir = Path(env[ENV_STATE_DIR]).expanduser() if env.get(ENV_STATE_DIR) else default_state
    config_path = (
        Path(env[ENV_CONFIG_PATH]).expanduser()
        if env.get(ENV_CONFIG_PATH)
        else state_dir / CONFIG_NAME
    )
    return Paths(profile, state_dir, config_path)


def profile_default_port(profile: str | None) -> int | None:
    """The port a profile implies before config is consulted (only ``dev`` has one)."""
    return DEV_PORT if profile == "dev" else None


@attrs.frozen
class DerivedPorts:
    gateway: int
    browser_control: int
    canvas: int


def derived_ports(base: int) -> DerivedPorts:
    """The runbook's rule of thumb: browser control = base+2, canvas = base+4."""
    return DerivedPorts(gateway=base, browser_control=base + 2, canvas=base + 4)
