"""``gateway status``: gather the supervisor's view, the port, the config, the lock and the
RPC probe, then let :mod:`verdict` name the state.

The local part is blocking (subprocesses, ``/proc``) and runs in a worker thread while the
RPC probe runs on the trio loop, so a slow ``systemctl`` does not stretch the probe's
latency. Nothing here writes anything.
"""

from __future__ import annotations

import platform
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
import trio
from gateway_client import GatewayClientError, GatewayConnectError, GatewayRpcError, open_client

from ..config.load import load_file
from ..config.model import Config
from ..config.paths import Paths
from ..config.settings import format_host, is_loopback_host
from ..config.target import Target, resolve_target
from ..controlui.link import dashboard_url
from ..errors import ConfigError
from ..lock import holder_alive, lock_path, read_lock
from ..lock import probe as probe_lock
from ..logs.files import target_for
from ..ports import PortListener, port_listeners
from .control import LOG_LINES, Driver, driver_for, spec_for
from .discovery import FoundService, find_profiles, port_collisions, scan_services
from .errors import ManagerUnavailableError, ServiceError
from .host import Host
from .identity import Identity, Scope
from .installed import InstalledService, parse, read_text
from .logscan import last_error_line
from .render import render
from .runtime_view import ServiceRuntime
from .verdict import Facts, Probe, State, classify, owner_of


@attrs.frozen
class ServiceCommand:
    program_arguments: list[str]
    working_directory: str | None
    environment: dict[str, str]  # safe keys only: never a secret


@attrs.frozen
class ServiceView:
    manager: str | None
    scope: Scope
    name: str | None
    path: str | None
    installed: bool
    reachable: bool | None
    error: str | None
    runtime: ServiceRuntime | None
    command: ServiceCommand | None
    drift: bool | None
    issues: list[str]


@attrs.frozen
class RpcView:
    ok: bool
    url: str
    source: str
    skipped: bool = False
    error: str | None = None
    latency_ms: int | None = None
    pid: int | None = None
    version: str | None = None


@attrs.frozen
class ConfigView:
    path: str
    exists: bool
    valid: bool
    issues: list[str]
    service_path: str | None
    mismatch: bool


@attrs.frozen
class ListenerView:
    address: str
    pid: int | None
    command: str | None
    owner: str


@attrs.frozen
class PortView:
    port: int | None
    source: str
    status: Literal["busy", "free", "unknown"]
    listeners: list[ListenerView]


@attrs.frozen
class LockView:
    path: str
    state: str
    pid: int | None


@attrs.frozen
class GatewayView:
    """Where the gateway listens, as the config (or the service's args) says (E.5's
    ``Gateway: bind=..., port=...``, ``Dashboard:`` and ``Probe note:`` lines)."""

    bind_mode: str
    bind_host: str
    custom_bind_host: str | None
    port: int | None
    port_source: str
    probe_url: str
    probe_note: str
    dashboard: str | None  # None: the Control UI is off


@attrs.frozen
class GatewayStatus:
    state: State
    reasons: list[str]
    profile: str | None
    service: ServiceView
    rpc: RpcView
    config: ConfigView
    port: PortView
    lock: LockView
    last_error: str | None
    logs: str | None
    collisions: list[str]
    other_services: list[FoundService] | None  # only with --deep
    gateway: GatewayView | None = None
    file_logs: str | None = None  # today's file log of this profile
    os: str | None = None  # "Linux 6.1.0 (x86_64)": the overview's OS line
    # with --deep: the gateway's ``channels.status {probe:true}`` (None: not asked / no answer)
    channels: dict[str, Any] | None = None


@attrs.frozen
class _Plan:
    """What must be known before anything slow runs: the config and the probe target."""

    config: Config
    valid: bool
    issues: list[str]
    identity: Identity | None
    identity_error: str | None
    unit_text: str | None
    installed: InstalledService | None
    target: Target
    port_source: str


@attrs.frozen
class _Local:
    """The blocking part's findings, before the probe result is known."""

    service: ServiceView
    listeners: list[PortListener] | None
    lock: LockView
    last_error: str | None
    logs: str | None
    collisions: list[str]
    other_services: list[FoundService] | None


def _load_config(host: Host, paths: Paths) -> tuple[Config, bool, list[str]]:
    try:
        loaded = load_file(paths.config_path, host.env)
    except ConfigError as exc:
        return Config(), False, exc.problems
    return loaded.config, True, list(loaded.warnings)


def pick_identity(host: Host, paths: Paths) -> Identity:
    """The user unit, unless only a system unit exists for this profile."""
    user = host.identity(paths, "user")
    if user.manager == "systemd" and not user.path.exists():
        system = host.identity(paths, "system")
        if system.path.exists():
            return system
    return user


def _plan(
    host: Host, paths: Paths, url: str | None, token: str | None, password: str | None
) -> _Plan:
    config, valid, issues = _load_config(host, paths)
    identity, identity_error, text, installed = None, None, None, None
    try:
        identity = pick_identity(host, paths)
        text = read_text(identity.path)
        installed = parse(identity.manager, text) if text is not None else None
    except ServiceError as exc:
        identity_error = exc.message
    target = resolve_target(
        paths, url=url, token=token, password=password, env=host.env, config=config
    )
    # the runbook's labels ("service args" below, "env/config"), and the running gateway
    port_source = "explicit --url" if url else "env/config"
    if target.running and target.port_source:
        port_source = target.port_source
    pinned = installed.pinned_port if installed is not None else None
    if pinned is not None and target.source == "local loopback" and not target.running:
        # the service listens where its unit says, whatever the CLI's config says now
        host_part = urlsplit(target.url).hostname or "127.0.0.1"
        target = attrs.evolve(target, url=f"ws://{format_host(host_part)}:{pinned}")
        port_source = "service args"
    return _Plan(
        config, valid, issues, identity, identity_error, text, installed, target, port_source
    )


def _service_view(host: Host, paths: Paths, plan: _Plan) -> tuple[ServiceView, Driver | None]:
    identity, installed, text = plan.identity, plan.installed, plan.unit_text
    if identity is None:
        view = ServiceView(
            None, "user", None, None, False, None, plan.identity_error, None, None, None, []
        )
        return view, None
    driver = driver_for(host, identity, paths)
    runtime, error, reachable = None, None, None
    try:
        driver.connect()
        reachable = True
        runtime = driver.runtime(identity)
    except ManagerUnavailableError as exc:
        reachable, error = False, exc.message
    drift = None
    issues: list[str] = []
    command = None
    if installed is not None and text is not None:
        command = ServiceCommand(
            list(installed.program_arguments),
            installed.working_directory,
            installed.safe_environment,
        )
        if installed.is_ours:
            expected = render(spec_for(host, paths, identity, installed.options, plan.config))
            drift = expected != text
            if drift:
                issues.append(
                    "the unit differs from the current template "
                    f"(run `{paths.cli('doctor --fix')}`)"
                )
        if not installed.runs_gateway:
            issues.append("the service command does not run `gateway`")
        issues += [f"the unit embeds {key} (a secret)" for key in installed.embedded_secrets]
    view = ServiceView(
        manager=identity.manager,
        scope=identity.scope,
        name=identity.unit,
        path=str(identity.path),
        installed=text is not None,
        reachable=reachable,
        error=error,
        runtime=runtime,
        command=command,
        drift=drift,
        issues=issues,
    )
    return view, driver


def lock_view(paths: Paths) -> LockView:
    path = lock_path(paths)
    state = probe_lock(path)
    info = read_lock(path) if state == "held" else None
    pid = info.pid if info is not None and holder_alive(info) else None
    return LockView(str(path), state, pid)


def _is_local(target: Target) -> bool:
    hostname = urlsplit(target.url).hostname or ""
    return target.source == "local loopback" or is_loopback_host(hostname)


def _local(host: Host, paths: Paths, plan: _Plan, deep: bool) -> _Local:
    service, driver = _service_view(host, paths, plan)
    port = urlsplit(plan.target.url).port
    local = port is not None and _is_local(plan.target)
    listeners = port_listeners(port, host.proc) if port is not None and local else None
    last_error = logs = None
    runtime = service.runtime
    if driver is not None and plan.identity is not None and service.installed:
        logs = driver.log_hint(plan.identity)
        failing = runtime is not None and (runtime.looks_running or runtime.status == "failed")
        if failing and not listeners:
            last_error = last_error_line(driver.log_lines(plan.identity, LOG_LINES))
    services = scan_services(service_dirs(host, system=deep))
    return _Local(
        service=service,
        listeners=listeners,
        lock=lock_view(paths),
        last_error=last_error,
        logs=logs,
        collisions=port_collisions(find_profiles(host.home, services, current=paths, env=host.env)),
        other_services=[s for s in services if s.path != service.path] if deep else None,
    )


def service_dirs(host: Host, *, system: bool) -> list[tuple[Scope, Path]]:
    dirs: list[tuple[Scope, Path]] = [
        ("user", host.home / ".config" / "systemd" / "user"),
        ("user", host.home / "Library" / "LaunchAgents"),
    ]
    if system:
        dirs += [("system", d) for d in (host.system_unit_dir, *host.system_scan_dirs)]
    return dirs


@attrs.frozen
class ProbeOutcome:
    view: RpcView
    answered: bool  # a gateway spoke, even if only to refuse us
    payload: dict[str, Any] | None = None  # the ``status`` RPC result
    channels: dict[str, Any] | None = None  # ``channels.status`` (with ``channels=True``)


async def probe_rpc(target: Target, timeout_ms: int, *, channels: bool = False) -> ProbeOutcome:
    """Connect and call ``status`` within ``timeout_ms``; with ``channels``, also
    ``channels.status`` with live probes (``gateway status --deep``)."""
    timeout = timeout_ms / 1000
    start = trio.current_time()
    found: Any = None

    def failed(error: str) -> RpcView:
        return RpcView(False, target.url, target.source, error=error)

    try:
        with trio.fail_after(timeout + 1):
            async with open_client(
                target.url, token=target.token, password=target.password, connect_timeout=timeout
            ) as client:
                payload = await client.call("status", {}, timeout=timeout)
                if channels:
                    found = await client.call(
                        "channels.status", {"probe": True, "timeoutMs": timeout_ms}, timeout=timeout
                    )
    except GatewayRpcError as exc:
        return ProbeOutcome(failed(f"{exc.code}: {exc.message}"), True)
    except GatewayConnectError as exc:
        return ProbeOutcome(failed(str(exc)), exc.error is not None)
    except GatewayClientError as exc:
        return ProbeOutcome(failed(str(exc)), False)
    except trio.TooSlowError:
        return ProbeOutcome(failed(f"gateway timeout after {timeout_ms}ms"), False)
    latency = int((trio.current_time() - start) * 1000)
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    pid = (body.get("gateway") or {}).get("pid")
    version = body.get("runtimeVersion")
    view = RpcView(
        True,
        target.url,
        target.source,
        latency_ms=latency,
        pid=pid if isinstance(pid, int) else None,
        version=version if isinstance(version, str) else None,
    )
    return ProbeOutcome(view, True, body, found if isinstance(found, dict) else None)


async def gather(
    host: Host,
    paths: Paths,
    *,
    url: str | None = None,
    token: str | None = None,
    password: str | None = None,
    timeout_ms: int = 10_000,
    no_probe: bool = False,
    deep: bool = False,
) -> tuple[GatewayStatus, dict[str, Any] | None]:
    """Everything ``gateway status`` reports, and the ``status`` RPC payload when the probe
    answered (``smart-agent-neo status`` shows it). Cancellation: safe anywhere (read-only)."""
    plan = _plan(host, paths, url, token, password)
    results: list[_Local] = []

    async def run_local() -> None:
        results.append(await trio.to_thread.run_sync(partial(_local, host, paths, plan, deep)))

    outcome = ProbeOutcome(RpcView(False, plan.target.url, plan.target.source, skipped=True), False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_local)
        if not no_probe:
            outcome = await probe_rpc(plan.target, timeout_ms, channels=deep)
    status = _assemble(paths, plan, results[0], outcome.view, outcome.answered)
    if outcome.channels is not None:
        status = attrs.evolve(status, channels=outcome.channels)
    return status, outcome.payload


def _assemble(
    paths: Paths, plan: _Plan, local: _Local, rpc: RpcView, answered: bool
) -> GatewayStatus:
    runtime = local.service.runtime
    facts = Facts(
        installed=local.service.installed,
        runtime=runtime,
        listeners=local.listeners,
        probe=Probe(
            ok=rpc.ok, skipped=rpc.skipped, answered=answered, error=rpc.error, pid=rpc.pid
        ),
        lock_pid=local.lock.pid,
        port=urlsplit(plan.target.url).port or 0,
        config_path=str(paths.config_path),
    )
    state, reasons = classify(facts)
    installed = plan.installed
    service_config = installed.config_path if installed is not None else None
    config = ConfigView(
        path=str(paths.config_path),
        exists=paths.config_path.exists(),
        valid=plan.valid,
        issues=plan.issues,
        service_path=service_config,
        mismatch=service_config is not None and service_config != str(paths.config_path),
    )
    if config.mismatch:
        reasons.append(
            "the CLI and the service use different config files (profile or state dir mismatch); "
            f"rerun `{paths.cli('gateway install --force')}` with the profile you expect"
        )
    listeners = [
        ListenerView(entry.address, entry.pid, entry.command, owner_of(entry, facts))
        for entry in local.listeners or []
    ]
    status: Literal["busy", "free", "unknown"] = (
        "unknown" if local.listeners is None else ("busy" if listeners else "free")
    )
    return GatewayStatus(
        state=state,
        reasons=reasons,
        profile=paths.profile,
        service=local.service,
        rpc=rpc,
        config=config,
        port=PortView(urlsplit(plan.target.url).port, plan.port_source, status, listeners),
        lock=local.lock,
        last_error=local.last_error,
        logs=local.logs,
        collisions=local.collisions,
        other_services=local.other_services,
        gateway=gateway_view(plan),
        file_logs=file_log(paths, plan.config),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
    )


PROBE_NOTES = {
    "loopback": "Loopback-only gateway; only local clients can connect.",
    "lan": "Local probe uses loopback (127.0.0.1). bind=lan listens on 0.0.0.0 (all "
    "interfaces); use a LAN IP for remote clients.",
    "auto": "Local probe uses loopback (127.0.0.1); bind=auto listens on 127.0.0.1 when it can.",
    "tailnet": "bind=tailnet listens on this machine's Tailscale address (else loopback).",
    "custom": "bind=custom listens on gateway.customBindHost only.",
}


def gateway_view(plan: _Plan) -> GatewayView:
    gw = plan.config.gateway
    url = urlsplit(plan.target.url)
    bind_host = {"loopback": "127.0.0.1", "auto": "127.0.0.1", "lan": "0.0.0.0"}.get(
        gw.bind, url.hostname or "127.0.0.1"
    )
    if gw.bind == "custom" and gw.custom_bind_host:
        bind_host = gw.custom_bind_host
    ui = gw.control_ui
    dashboard = None
    if ui.enabled and url.port is not None:
        dashboard = dashboard_url(url.hostname or "127.0.0.1", url.port, ui.base_path)
    return GatewayView(
        bind_mode=gw.bind,
        bind_host=bind_host,
        custom_bind_host=gw.custom_bind_host,
        port=url.port,
        port_source=plan.port_source,
        probe_url=plan.target.url,
        probe_note=PROBE_NOTES.get(gw.bind, ""),
        dashboard=dashboard,
    )


def file_log(paths: Paths, config: Config) -> str:
    """Today's file log of this profile (where the gateway writes; it may not exist yet)."""
    target = target_for(paths.state_dir, paths.profile, config.logging.file)
    return str(target.dated(date.today()))
