"""Doctor checks of the service and its neighbours: unit drift, manager, lingering, the
port, duplicate services and profile port collisions."""

from __future__ import annotations

from ..config.model import Config
from ..errors import GatewayError
from ..instances import configured_port, running
from ..ports import port_listeners
from .checks import Check, Context
from .control import install, service_port, spec_for
from .discovery import find_profiles, port_collisions, scan_services
from .errors import ManagerUnavailableError, ServiceError
from .render import render
from .status import service_dirs
from .systemd import Systemd
from .verdict import Facts, Probe, owner_of


def check_service(ctx: Context) -> Check:
    identity, installed, text = ctx.identity, ctx.installed, ctx.unit_text
    if identity is None or installed is None or text is None:
        return Check(
            "service.drift", "ok", f"no service installed ({ctx.paths.cli('gateway install')})"
        )
    if not installed.is_ours:
        return Check(
            "service.drift",
            "warn",
            f"{identity.path} was not written by smart-agent-neo; not compared",
        )
    problems = []
    if installed.embedded_secrets:
        problems.append(f"it embeds {', '.join(installed.embedded_secrets)}")
    if installed.config_path and installed.config_path != str(ctx.paths.config_path):
        problems.append(f"it reads {installed.config_path}, this CLI reads {ctx.paths.config_path}")
    config = ctx.loaded.config if ctx.loaded else None
    if config is not None and installed.options.port is None:
        wanted = service_port(ctx.paths, installed.options, config)
        pinned = installed.pinned_port
        if pinned is not None and pinned != wanted:
            # OPERATIONS.md E.5, gateway-port-mismatch: --fix rewrites it with the new port
            problems.append(
                f"Gateway service port does not match current gateway config. ({pinned} -> {wanted})"
            )
    expected = render(spec_for(ctx.host, ctx.paths, identity, installed.options, config))
    if expected == text and not problems:
        return Check("service.drift", "ok", f"{identity.path} matches the current template")
    if expected != text:
        problems.insert(0, "it differs from the current template (version, paths or settings)")
    host, paths, scope, options = ctx.host, ctx.paths, identity.scope, installed.options

    def rewrite() -> str:
        try:
            result = install(host, paths, scope=scope, options=options, force=True)
        except ManagerUnavailableError as exc:
            return f"rewrote {identity.path}; not reloaded: {exc.message}"
        return f"rewrote {identity.path} and restarted {identity.unit} ({result.result})"

    return Check("service.drift", "warn", f"{identity.path}: " + "; ".join(problems), rewrite)


def check_manager(ctx: Context) -> Check:
    if ctx.installed is None:
        return Check("service.manager", "ok", "no service installed")
    if ctx.manager_error:
        return Check("service.manager", "warn", ctx.manager_error)
    runtime = ctx.runtime
    if runtime is not None and not runtime.loaded:
        return Check(
            "service.manager",
            "warn",
            "the unit file exists but the service manager has not loaded it "
            f"(run `{ctx.paths.cli('gateway install')}`)",
        )
    if runtime is not None and runtime.enabled is False:
        return Check(
            "service.manager",
            "warn",
            "the service is disabled: it will not start at boot "
            f"(run `{ctx.paths.cli('gateway install')}`)",
        )
    return Check("service.manager", "ok", "the service manager knows the service")


def check_linger(ctx: Context) -> Check:
    identity = ctx.identity
    if (
        identity is None
        or identity.manager != "systemd"
        or identity.scope != "user"
        or ctx.installed is None
    ):
        return Check("service.linger", "ok", "not needed (no systemd user service)")
    if ctx.manager_error:
        return Check(
            "service.linger", "warn", "unknown: the systemd user manager cannot be reached"
        )
    driver = Systemd(ctx.host, "user", ctx.paths.profile)
    linger = driver.linger()
    if linger:
        return Check("service.linger", "ok", f"lingering is on for {ctx.host.user}")
    user = ctx.host.user
    if linger is None:
        return Check(
            "service.linger",
            "warn",
            f"cannot tell whether lingering is on for {user} (loginctl failed)",
        )
    runner = ctx.host.runner

    def enable() -> str:
        result = runner.run(driver.enable_linger_command())
        if not result.ok:
            raise ServiceError(
                f"loginctl enable-linger failed: {result.detail}; run: sudo loginctl enable-linger {user}"
            )
        return f"enabled lingering for {user}"

    return Check(
        "service.linger",
        "warn",
        f"lingering is off for {user}: the user service stops when {user} logs out",
        enable,
    )


# -- ports and other gateways ---------------------------------------------------------------


def _port(ctx: Context) -> int:
    """The running gateway's port, else the service's pinned one, else the configured."""
    live = running(ctx.paths)
    if live is not None and live.port:
        return live.port
    if ctx.installed is not None and ctx.installed.pinned_port is not None:
        return ctx.installed.pinned_port
    config = ctx.loaded.config if ctx.loaded else Config()
    try:
        return configured_port(ctx.paths, ctx.host.env, config).port
    except GatewayError:  # an invalid SMART_AGENT_NEO_GATEWAY_PORT: the config's port
        return config.gateway.port


def check_port(ctx: Context) -> Check:
    port = _port(ctx)
    found = port_listeners(port, ctx.host.proc)
    if found is None:
        return Check("port.conflict", "ok", f"port {port}: listeners cannot be inspected here")
    if not found:
        return Check("port.conflict", "ok", f"port {port} is free")
    live = running(ctx.paths)
    lock_pid = live.pid if live is not None else None
    facts = Facts(
        ctx.installed is not None,
        ctx.runtime,
        found,
        Probe(ok=False, skipped=True),
        lock_pid,
        port,
        str(ctx.paths.config_path),
    )
    for listener in found:
        owner = owner_of(listener, facts)
        if owner == "this-gateway":
            return Check(
                "port.conflict", "ok", f"port {port} is served by this gateway (pid {listener.pid})"
            )
    listener = found[0]
    who = (
        f"pid {listener.pid} ({listener.command or '?'})"
        if listener.pid
        else "a process of another user"
    )
    return Check(
        "port.conflict",
        "fail",
        f"port {port} is held by {who}; stop it or give this profile another gateway.port (doctor never kills processes)",
    )


def check_duplicates(ctx: Context) -> Check:
    services = scan_services(service_dirs(ctx.host, system=True))
    ours = [s for s in services if s.ours]
    by_profile: dict[str | None, list[str]] = {}
    by_config: dict[str, list[str]] = {}
    for service in ours:
        by_profile.setdefault(service.profile, []).append(service.path)
        if service.config_path:
            by_config.setdefault(service.config_path, []).append(service.path)
    problems = [
        f"profile {profile or 'default'} has {len(found)} services: {', '.join(found)}"
        for profile, found in by_profile.items()
        if len(found) > 1
    ]
    problems += [
        f"{len(found)} services read {config}: {', '.join(found)}"
        for config, found in by_config.items()
        if len(found) > 1 and not any(set(found) == set(p) for p in by_profile.values())
    ]
    if problems:
        return Check("services.duplicate", "fail", "; ".join(problems) + " (uninstall all but one)")
    others = [s for s in services if not s.ours]
    if others:
        return Check(
            "services.duplicate",
            "warn",
            "other gateway-like services: " + ", ".join(s.path for s in others),
        )
    return Check(
        "services.duplicate", "ok", f"{len(ours)} smart-agent-neo service(s), no duplicates"
    )


def check_profiles(ctx: Context) -> Check:
    services = scan_services(service_dirs(ctx.host, system=False))
    clashes = port_collisions(
        find_profiles(ctx.host.home, services, current=ctx.paths, env=ctx.host.env)
    )
    if clashes:
        return Check("profiles.ports", "warn", "; ".join(clashes))
    return Check("profiles.ports", "ok", "no port collisions between profiles")
