"""Which gateway an RPC command talks to, and with which credentials.

Default: the active profile's running gateway (its lock records where it listens), else
``ws://127.0.0.1:<port>`` (port from env, profile, config) --
credentials from the config, then env, then the generated token in the state dir. A config in
``gateway.mode=remote`` targets ``gateway.remote.url`` with ``gateway.remote.token``.
An explicit ``--url`` never borrows credentials from config or env: it needs its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import attrs
import json5

from ..errors import ConfigError, GatewayError
from ..instances import effective_port, running
from ..lock import lock_path
from ..netifs import tailnet_address
from .load import load_file, parse
from .model import Config
from .paths import ENV_PASSWORD, ENV_TOKEN, ENV_URL, Paths
from .settings import format_host


def _config_for_target(paths: Paths, env: Mapping[str, str]) -> Config:
    """The config, or -- when the file is invalid -- the parts of it that are usable.

    Diagnostic commands must keep working while the file is broken (the running gateway
    is still on its last good config): take ``gateway.port``/``auth``/``remote`` where their
    values are well-formed and defaults for the rest.
    """
    try:
        return load_file(paths.config_path, env).config
    except ConfigError:
        pass
    try:
        raw = json5.loads(paths.config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Config()
    gateway = raw.get("gateway") if isinstance(raw, dict) else None
    if not isinstance(gateway, dict):
        return Config()
    usable: dict[str, object] = {}
    for key in ("port", "mode", "auth", "remote"):
        if key in gateway:
            try:
                parse(json.dumps({"gateway": {key: gateway[key]}}), env)
            except ConfigError:
                continue
            usable[key] = gateway[key]
    return parse(json.dumps({"gateway": usable}), env)[0]


@attrs.frozen
class Target:
    url: str
    token: str | None
    password: str | None
    source: str  # "explicit --url" | "local loopback" | "remote config" | "env"
    # for a local target: where its port came from (a running gateway's lock, the
    # environment, the profile, the config) -- what a "cannot reach" message reports
    port_source: str | None = None
    running: bool = False  # the address a running gateway of this profile recorded

    def where(self) -> str:
        """``Source: ...`` of the unreachable-gateway block."""
        return f"{self.source} (port from {self.port_source})" if self.port_source else self.source


def resolve_target(
    paths: Paths,
    *,
    url: str | None,
    token: str | None,
    password: str | None,
    env: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> Target:
    """``config``: an already loaded config (``gateway status`` passes defaults when the
    file is invalid, so it can still probe); otherwise the file is loaded here."""
    env = os.environ if env is None else env
    if url:
        if not token and not password:
            raise GatewayError(
                "gateway url override requires explicit credentials (--token or --password)"
            )
        return Target(url, token, password, "explicit --url")
    cfg = config if config is not None else _config_for_target(paths, env)
    gw = cfg.gateway
    if env.get(ENV_URL):
        return Target(
            env[ENV_URL], token or env.get(ENV_TOKEN), password or env.get(ENV_PASSWORD), "env"
        )
    if gw.mode == "remote" and gw.remote.url:
        return Target(
            gw.remote.url, token or gw.remote.token, password or gw.remote.password, "remote config"
        )
    # as the gateway resolves its own secret (settings.py): the config, then the env var
    token = token or gw.auth.token or env.get(ENV_TOKEN)
    password = password or gw.auth.password or env.get(ENV_PASSWORD)
    if not token and not password:
        try:
            token = paths.token_file.read_text().strip() or None
        except OSError:
            token = None
    choice = effective_port(paths, env, cfg)
    if choice.url is not None:  # the running gateway said where it listens
        return Target(choice.url, token, password, "local loopback", choice.source, True)
    # a gateway bound to one custom address does not listen on loopback
    host = "127.0.0.1"
    if gw.bind == "custom" and gw.custom_bind_host:
        host = format_host(gw.custom_bind_host)
    elif gw.bind == "tailnet":  # it listens on the tailnet address when there is one
        host = tailnet_address() or host
    return Target(f"ws://{host}:{choice.port}", token, password, "local loopback", choice.source)


def where_we_looked(target: Target, paths: Paths) -> list[str]:
    """The lines after "cannot reach the gateway": the target, how it was chosen, the
    config read and -- for the local default -- whether a running gateway was found."""
    lines = [
        f"Gateway target: {target.url}",
        f"Source: {target.where()}",
        f"Config: {paths.config_path}",
    ]
    if target.source == "local loopback" and running(paths) is None:
        profile = f"profile {paths.profile}" if paths.profile else "the default profile"
        lines.append(f"Running gateway: none of {profile} (no live lock at {lock_path(paths)})")
    return lines
