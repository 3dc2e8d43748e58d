"""``smart-agent-neo gateway [run]``: resolve settings, print the banner, serve until stopped."""

from __future__ import annotations

import argparse
import gc
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import trio
from rich.console import Console

from .. import __version__, logs
from ..app import Running
from ..auth import PendingToken
from ..canvas.files import PREFIX as CANVAS_PREFIX
from ..config.load import load_file
from ..config.paths import Paths
from ..config.settings import (
    BIND_MODES,
    INVALID_AUTH,
    INVALID_BIND,
    Overrides,
    Settings,
    check_mode,
    format_host,
    is_loopback_host,
    port_flag,
    resolve,
)
from ..controlui.link import dashboard_url
from ..errors import EX_CONFIG, ConfigError, GatewayError, PortInUseError, StartupError
from ..force import NotOursError, stop_gateways
from ..instances import client_url
from ..lock import LockHeldError, acquire_for_run, lock_path
from ..logs.entry import LEVELS
from ..netifs import tailnet_address
from ..ports import describe, looks_like_gateway, port_listeners
from ..service.notify import notify
from ..supervisor import supervise

log = logging.getLogger("gateway")
GC_THRESHOLDS = (50_000, 50, 1_000)


def configure_logging(
    settings: Settings, verbose: bool, level: str | None, console: Console
) -> None:
    """The file log under the state dir plus terse console lines (see ``gateway.logs``)."""
    logs.install(settings, console=console, verbose=verbose, level=log_level(level, os.environ))


def log_level(flag: str | None, env: Mapping[str, str]) -> str | None:
    """``--log-level`` beats ``SMART_AGENT_NEO_LOG_LEVEL``; either overrides file and console."""
    value = flag or env.get(logs.ENV_LOG_LEVEL) or None
    if value is not None and value not in LEVELS:
        choices = ", ".join(LEVELS)
        raise GatewayError(f'{logs.ENV_LOG_LEVEL}: expected one of {choices}, got "{value}"')
    return value


WS_LOG_STYLES = ("auto", "full", "compact")
TAILSCALE_MODES = ("off", "serve", "funnel")


def check_flags(args: argparse.Namespace) -> None:
    """The run flags argparse takes as plain words, checked before anything is read, with
    the runbook's texts (OPERATIONS.md B.2)."""
    if args.ws_log is not None and args.ws_log not in WS_LOG_STYLES:
        raise StartupError('Invalid --ws-log (use "auto", "full", "compact")')
    if args.bind is not None and args.bind not in BIND_MODES:
        raise StartupError(INVALID_BIND)
    if args.auth_mode is not None and args.auth_mode not in ("token", "password", "none"):
        raise StartupError(INVALID_AUTH)
    if args.tailscale is not None and args.tailscale not in TAILSCALE_MODES:
        raise StartupError('Invalid --tailscale (use "off", "serve", or "funnel")')
    port_flag(args.port)


def password_from_file(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StartupError(f"cannot read --password-file {path}: {exc.strerror or exc}") from None
    if not value:
        raise StartupError(f"--password-file {path} is empty")
    return value


def load_settings(args: argparse.Namespace, paths: Paths, token: PendingToken) -> Settings:
    """Settings for this run (``token`` supplies the generated token when one is needed)."""
    loaded = load_file(paths.config_path, os.environ)
    check_mode(loaded, args.allow_unconfigured, paths.profile)
    overrides = Overrides(
        port=port_flag(args.port),
        bind=args.bind,
        host=args.host,
        token=args.token,
        password=args.password or password_from_file(args.password_file),
        auth_mode=args.auth_mode,
        allow_unconfigured=args.allow_unconfigured,
        tailscale=args.tailscale,
    )
    return resolve(loaded, paths, overrides, os.environ, token.get, tailnet_address)


def banner(
    running: Running,
    settings: Settings,
    token_is_new: bool,
    out: Console,
    store_error: str | None = None,
) -> None:
    url = running.url
    http = url.replace("ws://", "http://", 1)
    out.print(
        f"[bold]smart-agent-neo gateway {__version__}[/] listening on [cyan]{url}[/] (pid {os.getpid()})"
    )
    out.print(f"Connect: {url}   Health: {http}/healthz")
    ui = settings.config.gateway.control_ui
    if ui.enabled:
        link = dashboard_url(running.host, running.port, ui.base_path)
        out.print(f"Dashboard: {link}   (paste the token, or: {settings.paths.cli('dashboard')})")
    if running.canvas_port is not None:
        canvas = f"http://{format_host(running.host)}:{running.canvas_port}{CANVAS_PREFIX}/"
        out.print(f"Canvas: {canvas}")
    out.print(
        f"Config: {settings.paths.config_path}{'' if settings.config_exists else ' (not found: embedded defaults)'}"
    )
    auth = settings.auth
    if auth.source == "generated":
        token_file = settings.paths.token_file
        if token_is_new and store_error is not None:
            out.print(
                f"Generated gateway token (NOT stored: {store_error}; valid for this run only, "
                "set gateway.auth.token to keep one)" + (":" if out.is_terminal else ""),
                markup=False,
            )
            if out.is_terminal:
                out.print(f"  {auth.token}", markup=False)
        elif token_is_new and not out.is_terminal:
            # a supervisor's journal keeps stdout forever: the secret stays in its 0600 file
            out.print(
                f"Generated gateway token stored 0600 in {token_file} (read it with: cat "
                f"{token_file}; it is shown only on a terminal)",
                markup=False,
            )
        elif token_is_new:
            out.print(f"Generated gateway token (shown once, stored 0600 in {token_file}):")
            out.print(f"  {auth.token}", markup=False)
        else:
            out.print(
                f"Auth: token (generated earlier; read it with: cat {settings.paths.token_file})",
                markup=False,
            )
    else:
        out.print(f"Auth: {auth.mode} (from {auth.source})")
    if not is_loopback_host(running.host):
        # FAILURE-MODES 20: the secret and every frame cross the network in the clear
        out.print(
            f"Warning: listening on {format_host(running.host)} with plain ws:// and http://: "
            "the token and all traffic cross the network unencrypted. Put a TLS proxy in "
            "front (wss://, and list it in gateway.trustedProxies) or keep the gateway on "
            "loopback and reach it over SSH or a VPN.",
            markup=False,
        )
    out.print("Press Ctrl-C to stop.")
    out.file.flush()  # supervisors and tests read the banner through a pipe


SUPERVISOR_MARKERS = ("SMART_AGENT_NEO_SERVICE_MARKER", "INVOCATION_ID", "XPC_SERVICE_NAME")


def supervised(env: Mapping[str, str]) -> bool:
    """Started by a service manager: our unit/plist's marker, or any systemd unit
    (``INVOCATION_ID``) or launchd job (``XPC_SERVICE_NAME``, which a terminal shows as "0")."""
    return any(env.get(key, "0") not in ("", "0") for key in SUPERVISOR_MARKERS)


def exit_code(error: GatewayError, env: Mapping[str, str]) -> int:
    """OPERATIONS.md D.4/J: 78 for an invalid config, 1 for every other failed start. Under a
    service manager a duplicate gateway is 78 too and a port someone else holds 75, so
    ``RestartPreventExitStatus=78`` stops a restart loop that cannot succeed."""
    if isinstance(error, ConfigError) or supervised(env):
        return error.exit_code
    return 1


def _gateway_error(exc: BaseException) -> GatewayError | None:
    """The single GatewayError inside ``exc`` (trio wraps task errors in groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, GatewayError) else None


def port_in_use(error: PortInUseError, port: int) -> GatewayError:
    """Name the holder. Our own gateway -> exit 78 so a supervisor does not loop on it."""
    holders = port_listeners(port) or []
    who = ", ".join(describe(h) for h in holders)
    if any(looks_like_gateway(h.command) for h in holders):
        conflict = GatewayError(f"{error} -- held by a smart-agent-neo gateway: {who}")
        conflict.exit_code = EX_CONFIG
        return conflict
    if holders:
        error = PortInUseError(f"{error} -- held by {who}")
    return error


async def run_gateway(
    args: argparse.Namespace, paths: Paths, settings: Settings, token: PendingToken, out: Console
) -> None:
    """--force, the lock, then the supervised serve loop; the lock is held across restarts."""
    if args.force:
        for line in await stop_gateways(settings.port, lock_path(paths)):
            out.print(line, markup=False)
    lock = acquire_for_run(paths, os.environ)

    def on_serving(running: Running, generation: int) -> None:
        lock.serving(running.port, client_url(running.host, running.port))
        current = running.runtime.settings
        shown = current.auth.token if current.auth.source == "generated" else None
        token_is_new = token.store(shown)  # bound: only now is a new token kept
        if generation == 1:
            banner(running, current, token_is_new, out, token.store_error)
            # Everything allocated so far (modules, schemas, config) lives as long as the
            # process: take it out of the collector's view so full collections stay short.
            gc.freeze()
        else:
            log.info("serving again on %s (in-process restart #%d)", running.url, generation - 1)
        # under systemd (Type=notify): ready only now that the port is bound
        notify(f"READY=1\nSTATUS=listening on {running.url}")

    def on_draining(running: Running) -> None:
        restarting = running.runtime.restart_requested
        notify("RELOADING=1" if restarting else "STOPPING=1")

    try:
        await supervise(
            settings,
            lambda: load_settings(args, paths, token),
            handle_signals=True,
            on_serving=on_serving,
            on_draining=on_draining,
        )
    finally:
        lock.release()


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    settings: Settings | None = None
    try:
        check_flags(args)
        token = PendingToken(paths.token_file)
        settings = load_settings(args, paths, token)
        # --ws-log full: every request on the console, as --verbose prints them
        verbose = args.verbose or args.ws_log == "full"
        level = args.log_level or getattr(args, "global_log_level", None)
        configure_logging(settings, verbose, level, err)
        # Per-connection state is many small objects; with the default thresholds full
        # collections over 1,000 connections stalled the process for 100+ ms (fan-out p99
        # 254 ms -> 67 ms with these; RSS unchanged; see BENCHMARKS.md).
        gc.set_threshold(*GC_THRESHOLDS)
        trio.run(run_gateway, args, paths, settings, token, out)
    except BaseException as exc:
        error = _gateway_error(exc)
        if error is None:
            raise
        if isinstance(error, PortInUseError) and not isinstance(error, NotOursError):
            if settings is not None:
                error = port_in_use(error, settings.port)
        if isinstance(error, ConfigError) and error.source is not None:
            # OPERATIONS.md C.3: the file, then one "- key.path: problem" line each
            err.print(f"Gateway failed to start: Invalid config at {error.source}:", markup=False)
            for problem in error.problems:
                err.print(f"- {problem}", markup=False)
        else:
            err.print(f"Gateway failed to start: {error}", markup=False)
        if isinstance(error, ConfigError):
            err.print(
                f"Run `{paths.cli('doctor')}` or `{paths.cli('config validate')}` "
                "to see every problem.",
                markup=False,
            )
        elif isinstance(error, NotOursError):
            err.print("Stop that program, or start on another port with --port.", markup=False)
        elif isinstance(error, LockHeldError) and error.info is not None:
            pid = error.info.pid
            err.print(
                f"It is running: use it (`{paths.cli('status')}`), stop it (Ctrl-C in its "
                f"terminal or kill -TERM {pid}; `{paths.cli('gateway stop')}` if it is the "
                "service), or take over with --force",
                markup=False,
            )
        elif isinstance(error, PortInUseError | LockHeldError) or error.exit_code == EX_CONFIG:
            err.print(
                f"If the gateway is supervised, stop it with: {paths.cli('gateway stop')}; "
                "or take over with --force",
                markup=False,
            )
        return exit_code(error, os.environ)
    finally:
        logs.uninstall()  # writes pending "suppressed" summaries, closes the file
    return 0
