"""``smart-agent-neo gateway [run]``: resolve settings, print the banner, serve until stopped."""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial

import trio
from rich.console import Console

from .. import __version__
from ..app import Running, serve
from ..auth import load_or_create_token
from ..config.load import load_file
from ..config.paths import Paths
from ..config.settings import Overrides, Settings, check_mode, resolve
from ..errors import ConfigError, GatewayError, PortInUseError
from ..service.notify import notify


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(levelname)s %(message)s"))
    root = logging.getLogger("gateway")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def load_settings(args: argparse.Namespace, paths: Paths) -> tuple[Settings, bool]:
    """Settings for this run, and whether a token was generated just now."""
    loaded = load_file(paths.config_path, os.environ)
    check_mode(loaded, args.allow_unconfigured)
    token_existed = paths.token_file.exists()
    overrides = Overrides(
        port=args.port,
        bind=args.bind,
        host=args.host,
        token=args.token,
        password=args.password,
        auth_mode=args.auth_mode,
        allow_unconfigured=args.allow_unconfigured,
    )
    settings = resolve(
        loaded, paths, overrides, os.environ, lambda: load_or_create_token(paths.token_file)
    )
    return settings, settings.auth.source == "generated" and not token_existed


def banner(running: Running, settings: Settings, token_is_new: bool, out: Console) -> None:
    url = running.url
    http = url.replace("ws://", "http://", 1)
    out.print(
        f"[bold]smart-agent-neo gateway {__version__}[/] listening on [cyan]{url}[/] (pid {os.getpid()})"
    )
    out.print(f"Connect: {url}   Health: {http}/healthz")
    out.print(
        f"Config: {settings.paths.config_path}{'' if settings.config_exists else ' (not found: embedded defaults)'}"
    )
    auth = settings.auth
    if auth.source == "generated":
        if token_is_new:
            out.print(
                f"Generated gateway token (shown once, stored 0600 in {settings.paths.token_file}):"
            )
            out.print(f"  {auth.token}", markup=False)
        else:
            out.print(f"Auth: token (generated earlier; stored in {settings.paths.token_file})")
    else:
        out.print(f"Auth: {auth.mode} (from {auth.source})")
    out.print("Press Ctrl-C to stop.")
    out.file.flush()  # supervisors and tests read the banner through a pipe


def _gateway_error(exc: BaseException) -> GatewayError | None:
    """The single GatewayError inside ``exc`` (trio wraps task errors in groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, GatewayError) else None


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def main(settings: Settings, token_is_new: bool) -> None:
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(partial(serve, settings, handle_signals=True))
            banner(running, settings, token_is_new, out)
            # under systemd (Type=notify): ready only now that the port is bound
            notify(f"READY=1\nSTATUS=listening on {running.url}")
            await running.runtime.stop_requested.wait()
            if running.runtime.restart_expected_ms is None:
                notify("STOPPING=1")

    try:
        settings, token_is_new = load_settings(args, paths)
        configure_logging(args.verbose)
        trio.run(main, settings, token_is_new)
    except BaseException as exc:
        error = _gateway_error(exc)
        if error is None:
            raise
        err.print(f"Gateway failed to start: {error}", markup=False)
        if isinstance(error, ConfigError):
            err.print("Run `smart-agent-neo doctor` to inspect the config.", markup=False)
        elif isinstance(error, PortInUseError):
            err.print(
                "If the gateway is supervised, stop it with: smart-agent-neo gateway stop",
                markup=False,
            )
        return error.exit_code
    return 0
