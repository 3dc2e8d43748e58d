"""install / uninstall / start / stop / restart: plan, write, run, verify.

Each action reads what is on disk, decides the commands (pure, so ``--dry-run`` prints
exactly what a real run would do), writes files atomically, runs the commands through the
host's runner, and reads the supervisor's state back to report what is true afterwards --
never what was merely asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from .. import __version__
from ..config.load import Loaded, load_file
from ..config.model import Config
from ..config.paths import Paths, profile_default_port
from ..config.settings import check_mode, env_port
from ..errors import StartupError
from ..fsutil import write_atomic
from ..instances import running
from ..lock import LockInfo
from . import envfile
from .errors import ManagerUnavailableError, ServiceError
from .host import Host
from .identity import ENV_SERVICE_MARKER, MARKER, Identity, Scope
from .installed import read_text
from .launchd import Launchd
from .logscan import last_error_line
from .render import render
from .runtime_view import ServiceRuntime
from .spec import InstallOptions, ServiceSpec, build_spec
from .systemd import Systemd

LOG_LINES = 200
Driver = Systemd | Launchd  # the service manager of this host


@attrs.frozen
class ActionResult:
    action: str
    result: str  # installed|updated|unchanged|removed|not-installed|started|stopped|restarted
    identity: Identity
    commands: list[list[str]]
    changes: list[str] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    runtime: ServiceRuntime | None = None
    dry_run: bool = False
    unit_text: str | None = None


def driver_for(host: Host, identity: Identity, paths: Paths) -> Driver:
    if identity.manager == "launchd":
        return Launchd(host, paths.state_dir / "logs", paths.profile)
    return Systemd(host, identity.scope, paths.profile)


def spec_for(
    host: Host,
    paths: Paths,
    identity: Identity,
    options: InstallOptions,
    config: Config | None = None,
) -> ServiceSpec:
    if config is None:
        config = load_file(paths.config_path, host.env).config
    return build_spec(
        identity,
        paths,
        program=host.program,
        home=str(host.home),
        user=host.user,
        version=__version__,
        options=options,
        shutdown_timeout_ms=config.gateway.shutdown_timeout_ms,
        port=service_port(paths, options, config),
    )


def service_port(paths: Paths, options: InstallOptions, config: Config) -> int:
    """Where the service listens: a pinned ``--port``, else the profile's port (dev), else
    ``gateway.port`` (an exported env port was already turned into a pin by
    :func:`install_options`)."""
    return options.port or profile_default_port(paths.profile) or config.gateway.port


def _write(path: Path, text: str, *, secret: bool = False) -> None:
    try:
        write_atomic(path, text, secret=secret)
    except PermissionError:
        raise ServiceError(
            f"cannot write {path}: permission denied",
            hints=["a system unit needs root: sudo smart-agent-neo gateway install --system"],
        ) from None
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror}") from None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ServiceError(f"cannot remove {path}: {exc.strerror}") from None


def other_scope_unit(host: Host, paths: Paths, identity: Identity) -> Identity | None:
    """The same profile's unit in the other systemd scope, if one is installed."""
    if identity.manager != "systemd":
        return None
    other: Scope = "system" if identity.scope == "user" else "user"
    found = host.identity(paths, other)
    return found if found.path.exists() else None


def _scope_hint(other: Identity) -> str:
    if other.scope == "system":
        return f"a system unit is installed at {other.path}: add --system"
    return f"a user unit is installed at {other.path}: leave out --system"


def _run(driver: Driver, commands: Sequence[list[str]], identity: Identity) -> list[list[str]]:
    done = []
    for argv in commands:
        result = driver.host.runner.run(argv)
        done.append(list(argv))
        if not result.ok and not driver.best_effort(argv):
            hints = [f"logs: {driver.log_hint(identity)}"]
            if not driver.host.runner.dry_run:
                line = last_error_line(driver.log_lines(identity, LOG_LINES))
                if line:
                    hints.insert(0, f"last gateway error: {line}")
            raise ServiceError(f"{result.command} failed: {result.detail}", hints=hints)
    return done


def _verify(
    driver: Driver, identity: Identity, dry_run: bool
) -> tuple[ServiceRuntime | None, list[str]]:
    """Read the state back; a warning (with the last error line) when it is not running."""
    if dry_run:
        return None, []
    runtime = driver.runtime(identity)
    if runtime.looks_running:
        return runtime, []
    why = runtime.last_exit.describe() if runtime.last_exit else runtime.status
    warning = f"the gateway is not running after this ({why})"
    line = last_error_line(driver.log_lines(identity, LOG_LINES))
    return runtime, [warning] + ([f"last gateway error: {line}"] if line else [])


def _linger_warning(driver: Driver, dry_run: bool) -> list[str]:
    if dry_run or not isinstance(driver, Systemd) or driver.scope != "user":
        return []
    if driver.linger() is False:
        user = driver.host.user
        return [
            f"lingering is off for {user}: the gateway stops when you log out "
            f"(enable it: sudo loginctl enable-linger {user})"
        ]
    return []


def install_options(host: Host, port: int | None, allow_unconfigured: bool) -> InstallOptions:
    """``--port`` or an exported port is pinned, so the service listens where the CLI looks."""
    if port is not None and not 1 <= port <= 65535:
        raise StartupError(f"Invalid port: expected an integer 1-65535, got {port}")
    if port is None:
        port = env_port(host.env)
    return InstallOptions(port=port, allow_unconfigured=allow_unconfigured)


def _refuse_what_would_not_run(
    host: Host, paths: Paths, identity: Identity, loaded: Loaded, options: InstallOptions
) -> None:
    """A unit that cannot start only loops; two units for one profile fight over its port."""
    if not options.allow_unconfigured:
        try:
            check_mode(loaded, False, paths.profile)
        except StartupError as exc:
            raise ServiceError(
                f"not installing: the service could not start ({exc})",
                hints=[
                    f"create the config: {paths.cli('setup')}",
                    f'or set gateway.mode to "local" in {paths.config_path}',
                    "or run on embedded defaults: "
                    + paths.cli("gateway install --allow-unconfigured"),
                ],
            ) from None
    other = other_scope_unit(host, paths, identity)
    if other is not None:
        remove = paths.cli("gateway uninstall")
        if other.scope == "system":
            remove = f"sudo {remove} --system"
        raise ServiceError(
            f"not installing: this profile already has a {other.scope} unit at {other.path}",
            hints=[
                f"two units for one gateway would fight over its port; remove it first: {remove}"
            ],
        )


def _write_files(
    host: Host, paths: Paths, spec: ServiceSpec, text: str, existing: str | None
) -> tuple[list[str], list[str]]:
    """Write the unit (backing up a different one) and the env file; (changes, warnings)."""
    identity = spec.identity
    needed = envfile.needed_variables(host.env, read_text(paths.config_path))
    if identity.manager == "launchd":
        warnings = (
            [
                f"{', '.join(needed)} from your shell is not passed to the LaunchAgent; "
                "put the secret in the config file instead"
            ]
            if needed
            else []
        )
        if not host.runner.dry_run:
            # launchd opens StandardOutPath/StandardErrorPath but does not create directories
            (paths.state_dir / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        env_text = None
    else:
        warnings = []
        env_path = Path(spec.environment_file)
        env_text = envfile.merged(read_text(env_path), needed)
    if host.runner.dry_run:
        return [], warnings
    if existing == text:
        changes = [f"{identity.path} is already current (not rewritten)"]
    else:
        changes = [f"wrote {identity.path}"]
        if existing is not None:
            backup = identity.path.with_name(identity.path.name + ".bak")
            _write(backup, existing)
            changes.append(f"previous unit backed up to {backup}")
        _write(identity.path, text)
    if env_text is not None:
        _write(Path(spec.environment_file), env_text, secret=True)
        changes.append(
            f"saved {', '.join(needed)} for the service in {spec.environment_file} (0600)"
        )
    return changes, warnings


def install(
    host: Host,
    paths: Paths,
    *,
    scope: Scope = "user",
    options: InstallOptions | None = None,
    force: bool = False,
) -> ActionResult:
    """Write the unit and enable + start it; a no-op when the installed unit is current.

    Raises ConfigError (exit 78) for an invalid config, ServiceError when the service could
    not run or a step fails, ManagerUnavailableError (exit 69) after writing the unit when
    no service manager answers.
    """
    options = options or InstallOptions()
    dry_run = host.runner.dry_run
    identity = host.identity(paths, scope)
    loaded = load_file(paths.config_path, host.env)
    _refuse_what_would_not_run(host, paths, identity, loaded, options)
    spec = spec_for(host, paths, identity, options, loaded.config)
    text = render(spec)
    existing = read_text(identity.path)
    driver = driver_for(host, identity, paths)

    fresh = existing is None
    if existing == text and not force:
        runtime = None if dry_run else _runtime_if_reachable(driver, identity)
        if dry_run or (runtime is not None and runtime.loaded and runtime.enabled is not False):
            return ActionResult(
                "install",
                "unchanged",
                identity,
                [],
                runtime=runtime,
                dry_run=dry_run,
                unit_text=text,
            )
        fresh = True  # written earlier but never enabled (e.g. no manager then): finish it

    changes, warnings = _write_files(host, paths, spec, text, existing)
    foreground = None if dry_run else _foreground(host, paths, None)
    if foreground is not None:  # it holds the profile's lock: the service would exit 78
        warnings.append(
            f"a gateway of this profile runs in the foreground (pid {foreground.pid}); the "
            f"service cannot start until it stops (Ctrl-C, or kill -TERM {foreground.pid}), "
            f"then: {paths.cli('gateway start')}"
        )
    try:
        driver.connect()
    except ManagerUnavailableError as exc:
        did = f"wrote {identity.path}" if existing != text else f"{identity.path} is current"
        raise ManagerUnavailableError(
            f"{did}, but it is not enabled: {exc.message}",
            hints=[*warnings, *exc.hints],
            written=[str(identity.path)],
        ) from None
    commands = _run(driver, driver.install_commands(identity, fresh=fresh), identity)
    runtime, problems = _verify(driver, identity, dry_run)
    return ActionResult(
        "install",
        "installed" if fresh else "updated",
        identity,
        commands,
        changes,
        warnings + problems + _linger_warning(driver, dry_run),
        runtime,
        dry_run,
        text,
    )


def _runtime_if_reachable(driver: Driver, identity: Identity) -> ServiceRuntime | None:
    try:
        driver.connect()
    except ManagerUnavailableError:
        return None
    return driver.runtime(identity)


def _installed_or_raise(host: Host, paths: Paths, identity: Identity) -> None:
    if identity.path.exists():
        return
    other = other_scope_unit(host, paths, identity)
    hints = [_scope_hint(other)] if other else [f"install it first: {paths.cli('gateway install')}"]
    raise ServiceError(
        f"the gateway service is not installed ({identity.path} not found)", hints=hints
    )


def uninstall(host: Host, paths: Paths, *, scope: Scope = "user") -> ActionResult:
    dry_run = host.runner.dry_run
    identity = host.identity(paths, scope)
    if not identity.path.exists():
        other = other_scope_unit(host, paths, identity)
        hints = [_scope_hint(other)] if other else []
        return ActionResult(
            "uninstall", "not-installed", identity, [], warnings=hints, dry_run=dry_run
        )
    driver = driver_for(host, identity, paths)
    warnings: list[str] = []
    commands: list[list[str]] = []
    try:
        driver.connect()
        reachable = True
    except ManagerUnavailableError as exc:
        reachable = False
        warnings.append(f"{exc.message}; removed the file only")
    if reachable:
        commands += _run(driver, driver.uninstall_commands(identity), identity)
    changes = []
    if not dry_run:
        _remove(identity.path)
        changes.append(f"removed {identity.path}")
    if reachable:
        commands += _run(driver, driver.after_uninstall_commands(identity), identity)
    return ActionResult(
        "uninstall", "removed", identity, commands, changes, warnings, dry_run=dry_run
    )


def _service_started(host: Host, pid: int) -> bool:
    """Was ``pid`` started by one of our units? The unit sets the install marker in the
    process's environment; a gateway started from a shell does not have it."""
    try:
        raw = (host.proc / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{ENV_SERVICE_MARKER}={MARKER}".encode() in raw.split(b"\0")


def _foreground(host: Host, paths: Paths, service_pid: int | None) -> LockInfo | None:
    """This profile's gateway if it runs outside the service manager (its lock says it
    runs; it is neither the unit's main process nor started by a unit of ours)."""
    info = running(paths)
    if info is None or info.pid == service_pid or _service_started(host, info.pid):
        return None
    return info


def _foreground_error(info: LockInfo, paths: Paths, action: str) -> ServiceError:
    """``gateway stop|restart|start`` aimed at a gateway the service manager does not run."""
    pid = info.pid
    hints = {
        "stop": [f"stop it with Ctrl-C in its terminal, or: kill -TERM {pid}"],
        "restart": [
            f"restart it in place (same pid): kill -USR1 {pid}",
            f"or: {paths.cli('gateway call restart')}",
        ],
        "start": [
            "it is already running; to run it under the service manager instead, stop it "
            f"(Ctrl-C, or kill -TERM {pid}), then: {paths.cli('gateway install')}"
        ],
    }[action]
    where = f" on {info.url}" if info.url else ""
    return ServiceError(
        f"the gateway of this profile runs in the foreground (pid {pid}{where}), "
        f"not under the service manager: `gateway {action}` cannot {action} it",
        hints=hints,
    )


def control(host: Host, paths: Paths, action: str, *, scope: Scope = "user") -> ActionResult:
    """``start``, ``stop`` or ``restart`` an installed service, then report its real state."""
    dry_run = host.runner.dry_run
    identity = host.identity(paths, scope)
    if not identity.path.exists():
        foreground = _foreground(host, paths, None)
        if foreground is not None:
            raise _foreground_error(foreground, paths, action)
        if action == "stop":
            return ActionResult("stop", "not-installed", identity, [], dry_run=dry_run)
    _installed_or_raise(host, paths, identity)
    driver = driver_for(host, identity, paths)
    try:
        driver.connect()
    except ManagerUnavailableError:
        foreground = _foreground(host, paths, None)
        if foreground is not None:
            raise _foreground_error(foreground, paths, action) from None
        raise
    before = None if dry_run else driver.runtime(identity)
    foreground = _foreground(host, paths, before.pid if before is not None else None)
    if foreground is not None and action != "stop":
        raise _foreground_error(foreground, paths, action)
    loaded = True if before is None else before.loaded
    if action == "start":
        planned = driver.start_commands(identity, loaded=loaded)
    elif action == "restart":
        planned = driver.restart_commands(identity, loaded=loaded)
    else:
        planned = driver.stop_commands(identity)
    commands = _run(driver, planned, identity)
    if action == "stop":
        runtime = None if dry_run else driver.runtime(identity)
        if runtime is not None and runtime.looks_running:
            raise ServiceError(
                f"{identity.unit} is still {runtime.status} after stop (pid {runtime.pid})"
            )
        still = [_foreground_error(foreground, paths, "stop")] if foreground else []
        warnings = [f"{e.message}; {e.hints[0]}" for e in still]
        return ActionResult(
            "stop", "stopped", identity, commands, warnings=warnings, runtime=runtime,
            dry_run=dry_run,
        )  # fmt: skip
    runtime, problems = _verify(driver, identity, dry_run)
    if problems:
        raise ServiceError(problems[0], hints=[*problems[1:], f"logs: {driver.log_hint(identity)}"])
    return ActionResult(action, f"{action}ed", identity, commands, runtime=runtime, dry_run=dry_run)
