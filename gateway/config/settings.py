"""Resolve what the process will actually run with: config + flags + environment.

Precedence (runbook): port ``--port`` > ``SMART_AGENT_NEO_GATEWAY_PORT`` > the profile's port
(dev: 19001) > ``gateway.port`` > 18789; bind: CLI > ``gateway.bind`` > loopback; secrets:
flag > config > env (OPERATIONS.md B.1). Pure: token generation is injected, so tests need no files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Literal

import attrs

from ..clientip import ProxyPolicy, parse_network, proxy_policy
from ..errors import StartupError
from .load import Loaded
from .model import Config
from .paths import (
    ENV_CANVAS_HOST_PORT,
    ENV_PASSWORD,
    ENV_PORT,
    ENV_SKIP_CANVAS_HOST,
    ENV_TOKEN,
    Paths,
    cli_command,
    derived_ports,
    profile_default_port,
)

SecretSource = Literal["flag", "env", "config", "generated", "none"]
BIND_MODES = ("loopback", "lan", "tailnet", "auto", "custom")
INVALID_BIND = 'Invalid --bind (use "loopback", "lan", "tailnet", "auto", or "custom")'
INVALID_AUTH = 'Invalid --auth (use "token", "password", or "none")'


@attrs.frozen
class Overrides:
    """What the command line says; ``None`` = not given."""

    port: int | None = None
    bind: str | None = None
    host: str | None = None
    token: str | None = None
    password: str | None = None
    auth_mode: str | None = None
    allow_unconfigured: bool = False
    tailscale: str | None = None  # --tailscale off|serve|funnel


@attrs.frozen
class AuthSettings:
    mode: Literal["token", "password", "none"]
    token: str | None
    password: str | None
    source: SecretSource

    @property
    def user_configured(self) -> bool:
        """A secret the user chose (a generated token does not count for non-loopback binds)."""
        return self.source in ("flag", "env", "config")


@attrs.frozen
class Settings:
    config: Config
    paths: Paths
    bind: str
    host: str
    port: int
    auth: AuthSettings
    config_exists: bool = False
    # the canvas host's port (0: any free port); None when it is turned off
    canvas_port: int | None = None

    @property
    def url(self) -> str:
        return f"ws://{format_host(self.host)}:{self.port}"

    @property
    def proxies(self) -> ProxyPolicy:
        """``gateway.trustedProxies`` as a policy (validated by :func:`resolve`)."""
        gw = self.config.gateway
        return proxy_policy(tuple(gw.trusted_proxies), gw.allow_real_ip_fallback)


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_mode(loaded: Loaded, allow_unconfigured: bool, profile: str | None = None) -> None:
    """The runbook's start guard: refuse unless ``gateway.mode`` is local. ``profile``
    makes the suggested ``setup`` command the one for this profile."""
    if allow_unconfigured:
        return
    if not loaded.exists:
        raise StartupError(
            f"Missing config. Run `{cli_command(profile, 'setup')}` or set gateway.mode=local "
            "(or pass --allow-unconfigured)."
        )
    mode = loaded.config.gateway.mode
    if mode != "local":
        raise StartupError(
            f"Gateway start blocked: set gateway.mode=local (current: {mode or 'unset'}) "
            "or pass --allow-unconfigured."
        )


def resolve(
    loaded: Loaded,
    paths: Paths,
    overrides: Overrides,
    env: Mapping[str, str],
    generate_token: Callable[[], str],
    tailnet_address: Callable[[], str | None] = lambda: None,
) -> Settings:
    """``tailnet_address``: this machine's Tailscale IPv4 address, if any (``bind=tailnet``;
    the CLI passes :func:`gateway.netifs.tailnet_address`)."""
    gw = loaded.config.gateway
    port = _resolve_port(overrides, env, paths, gw.port)
    bind = overrides.bind or ("custom" if overrides.host else gw.bind)
    if bind not in BIND_MODES:
        raise StartupError(INVALID_BIND)
    host = _bind_host(bind, overrides.host or gw.custom_bind_host, tailnet_address)
    auth = _resolve_auth(loaded.config, overrides, env, generate_token)
    check_exposure(overrides.tailscale or gw.tailscale.mode, bind, auth.mode)
    if not is_loopback_host(host) and not auth.user_configured:
        raise StartupError(
            f"refusing to bind gateway to {format_host(host)}:{port} without auth "
            f"(set gateway.auth.token/password, or set {ENV_TOKEN}/{ENV_PASSWORD})"
        )
    ui = loaded.config.gateway.control_ui
    if (
        not is_loopback_host(host)
        and ui.enabled
        and not ui.allowed_origins
        and not ui.dangerously_allow_host_header_origin_fallback
    ):
        raise StartupError(
            "non-loopback Control UI requires gateway.controlUi.allowedOrigins (set explicit "
            "origins), or set gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback=true "
            "to use Host-header origin fallback mode (or set gateway.controlUi.enabled=false)"
        )
    if gw.tls.enabled:
        raise StartupError(
            "gateway.tls.enabled: not supported yet (TLS); terminate TLS in a reverse proxy "
            "(gateway.trustedProxies) and set it to false"
        )
    from ..logs.redact import compile_pattern  # here: gateway.logs imports this module

    for i, spec in enumerate(loaded.config.logging.redact_patterns):
        try:
            compile_pattern(spec)
        except ValueError as exc:
            raise StartupError(
                f"logging.redactPatterns[{i}]: invalid regular expression ({exc}), got {spec!r}"
            ) from None
    for i, entry in enumerate(gw.trusted_proxies):
        try:
            parse_network(entry)
        except ValueError:
            raise StartupError(
                f"gateway.trustedProxies[{i}]: expected an IP address or a CIDR range such as "
                f'"10.0.0.0/8", got "{entry}"'
            ) from None
    hooks = loaded.config.hooks
    if hooks.enabled and hooks.token and hooks.token in (auth.token, auth.password):
        which = "token" if hooks.token == auth.token else "password"
        raise StartupError(
            f"hooks.token matches gateway.auth {which}; a leaked hook token would open the "
            "whole gateway (set a distinct hooks.token)"
        )
    canvas = _canvas_port(loaded.config, env, port)
    return Settings(loaded.config, paths, bind, host, port, auth, loaded.exists, canvas)


def check_exposure(tailscale: str, bind: str, auth_mode: str) -> None:
    """Tailscale serve/funnel (``--tailscale`` or ``gateway.tailscale.mode``): the
    reference's preconditions with its texts (OPERATIONS.md B.2), then a plain refusal --
    this gateway does not drive ``tailscale serve`` itself yet."""
    if tailscale == "off":
        return
    if bind != "loopback":
        raise StartupError("tailscale serve/funnel requires gateway bind=loopback (127.0.0.1)")
    if tailscale == "funnel" and auth_mode != "password":
        raise StartupError(
            "tailscale funnel requires gateway auth mode=password "
            f"(set gateway.auth.password or {ENV_PASSWORD})"
        )
    raise StartupError(
        f"tailscale {tailscale}: not supported yet (Tailscale exposure); run `tailscale serve` "
        "yourself in front of the loopback gateway, or set the mode to off"
    )


TRUTHY = frozenset({"1", "true", "yes", "on"})


def _canvas_port(config: Config, env: Mapping[str, str], gateway_port: int) -> int | None:
    """``SMART_AGENT_NEO_CANVAS_HOST_PORT`` > ``canvasHost.port`` > gateway port + 4 (a
    gateway on any free port gets a canvas on any free port); ``None`` when turned off."""
    if not config.canvas_host.enabled:
        return None
    if env.get(ENV_SKIP_CANVAS_HOST, "").strip().lower() in TRUTHY:
        return None
    raw = env.get(ENV_CANVAS_HOST_PORT)
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not 0 <= value <= 65535:
            raise StartupError(f'{ENV_CANVAS_HOST_PORT}: expected an integer 0-65535, got "{raw}"')
        return value
    if config.canvas_host.port is not None:
        return config.canvas_host.port
    return derived_ports(gateway_port).canvas if gateway_port else 0


def port_flag(raw: str | None) -> int | None:
    """``--port`` as typed: a number (checked by :func:`check_port_flag`), else ``Invalid port``."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise StartupError(
            f'Invalid port: expected an integer 1-65535 (or 0: any free port), got "{raw}"'
        ) from None
    return check_port_flag(value)


def check_port_flag(port: int | None) -> int | None:
    """``--port``: the config's range, plus 0 for "any free port" (tests, throw-away runs)."""
    if port is not None and not 0 <= port <= 65535:
        raise StartupError(
            f"Invalid port: expected an integer 1-65535 (or 0: any free port), got {port}"
        )
    return port


def env_port(env: Mapping[str, str]) -> int | None:
    """``SMART_AGENT_NEO_GATEWAY_PORT``; an invalid value is an error for every command."""
    raw = env.get(ENV_PORT)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise StartupError(f'{ENV_PORT}: expected an integer 1-65535, got "{raw}"')
    return value


def _resolve_port(
    overrides: Overrides, env: Mapping[str, str], paths: Paths, configured: int
) -> int:
    flag = check_port_flag(overrides.port)
    if flag is not None:
        return flag
    from_env = env_port(env)
    if from_env is not None:
        return from_env
    return profile_default_port(paths.profile) or configured


def _bind_host(bind: str, custom_host: str | None, tailnet: Callable[[], str | None]) -> str:
    if bind in ("loopback", "auto"):
        return "127.0.0.1"
    if bind == "lan":
        return "0.0.0.0"
    if bind == "tailnet":
        # the machine's Tailscale address (100.64.0.0/10) when it has one, else loopback
        return tailnet() or "127.0.0.1"
    if not custom_host:
        raise StartupError("--bind custom requires --host (or gateway.customBindHost)")
    try:
        ipaddress.ip_address(custom_host.strip("[]"))
    except ValueError:
        raise StartupError(
            f'Invalid bind host "{custom_host}": expected an IP address such as 192.168.1.10'
        ) from None
    return custom_host.strip("[]")


def _resolve_auth(
    config: Config,
    overrides: Overrides,
    env: Mapping[str, str],
    generate_token: Callable[[], str],
) -> AuthSettings:
    cfg = config.gateway.auth
    # OPERATIONS.md B.1: token = gateway.auth.token, else the env var (the flag beats both)
    token, token_source = _first(
        (overrides.token, "flag"), (cfg.token, "config"), (env.get(ENV_TOKEN), "env")
    )
    password, password_source = _first(
        (overrides.password, "flag"), (cfg.password, "config"), (env.get(ENV_PASSWORD), "env")
    )
    mode = overrides.auth_mode or cfg.mode
    if mode is None:  # a password wins when both are there (the runbook-era rule)
        mode = "password" if password else "token"
    if mode == "none":
        return AuthSettings("none", None, None, "none")
    if mode == "password":
        if not password:
            raise StartupError(
                "gateway auth mode is password, but no password was configured "
                f"(set gateway.auth.password or {ENV_PASSWORD}, or pass --password)"
            )
        return AuthSettings("password", None, password, password_source)
    if mode != "token":
        raise StartupError(INVALID_AUTH)
    if not token:
        return AuthSettings("token", generate_token(), None, "generated")
    return AuthSettings("token", token, None, token_source)


def _first(*candidates: tuple[str | None, SecretSource]) -> tuple[str | None, SecretSource]:
    for value, source in candidates:
        if value:
            return value, source
    return None, "none"
