"""``smart-agent-neo``: argument parsing and dispatch only.

Global flags come before the command (``smart-agent-neo --dev gateway``). Every command
returns an exit code; expected failures are ``GatewayError``s printed as one line on stderr
(no traceback) with the error's exit code.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from .. import __version__
from ..config.paths import Paths, resolve_paths
from ..errors import GatewayError
from . import agent, rpc, run


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port (default: env, config, 18789)")
    parser.add_argument("--bind", choices=["loopback", "lan", "auto", "custom"], help="bind mode")
    parser.add_argument("--host", help="bind address for --bind custom")
    parser.add_argument("--token", help="shared token clients must present")
    parser.add_argument("--password", help="shared password clients must present")
    parser.add_argument("--auth", dest="auth_mode", choices=["token", "password", "none"])
    parser.add_argument("--verbose", action="store_true", help="mirror debug logs to the console")
    parser.add_argument(
        "--allow-unconfigured",
        action="store_true",
        help="start without a config file / without gateway.mode=local",
    )
    parser.set_defaults(handler=run.command)


def _add_target_options(parser: argparse.ArgumentParser, *, timeout_ms: int = 10_000) -> None:
    parser.add_argument("--url", help="gateway WebSocket URL (needs explicit --token/--password)")
    parser.add_argument("--token")
    parser.add_argument("--password")
    parser.add_argument("--timeout", type=int, default=timeout_ms, help="milliseconds")
    parser.add_argument("--json", action="store_true", help="print only JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smart-agent-neo", description="smart-agent-neo gateway")
    parser.add_argument(
        "-V", "--version", action="version", version=f"smart-agent-neo {__version__}"
    )
    parser.add_argument(
        "--dev", action="store_true", help="use the isolated dev profile (port 19001)"
    )
    parser.add_argument("--profile", help="named profile: state in ~/.smart-agent-neo-<name>")
    parser.add_argument("--no-color", action="store_true")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gateway = commands.add_parser("gateway", help="run the gateway (foreground) or talk to it")
    _add_run_options(gateway)
    gateway_commands = gateway.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND")
    _add_run_options(gateway_commands.add_parser("run", help="run the gateway in the foreground"))

    call = gateway_commands.add_parser("call", help="call one RPC method and print its payload")
    call.add_argument("method")
    call.add_argument("--params", default="{}", help="JSON object (default {})")
    call.add_argument("--expect-final", action="store_true", help="wait past an 'accepted' ack")
    _add_target_options(call)
    call.set_defaults(handler=rpc.call_command)

    for name, target in (("health", gateway_commands), ("health", commands)):
        health = target.add_parser(name, help="gateway health snapshot")
        _add_target_options(health)
        health.add_argument("--probe", action="store_true", help="force a live probe")
        health.set_defaults(handler=rpc.health_command)

    run_agent = commands.add_parser("agent", help="send a message to an agent, stream the reply")
    run_agent.add_argument("--message", "-m", required=True, help="what to ask")
    run_agent.add_argument("--session", help="session key (default: the agent's main session)")
    run_agent.add_argument("--agent", help="agent id (default: the configured default agent)")
    run_agent.add_argument(
        "--timeout", type=int, help="seconds (default: agents.defaults.timeoutSeconds)"
    )
    run_agent.add_argument(
        "--url", help="gateway WebSocket URL (needs explicit --token/--password)"
    )
    run_agent.add_argument("--token")
    run_agent.add_argument("--password")
    run_agent.add_argument("--json", action="store_true", help="print only the final JSON")
    run_agent.set_defaults(handler=agent.agent_command)

    status = commands.add_parser("status", help="overall summary of the gateway")
    _add_target_options(status)
    status.set_defaults(handler=rpc.status_command)
    return parser


def _paths(args: argparse.Namespace) -> Paths:
    if args.dev and args.profile:
        raise GatewayError("Cannot combine --dev with --profile")
    profile = "dev" if args.dev else args.profile
    return resolve_paths(profile, os.environ, Path.home())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    no_color = args.no_color or bool(os.environ.get("NO_COLOR"))
    out = Console(no_color=no_color, highlight=False, soft_wrap=True)
    err = Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        paths = _paths(args)
        code: int = args.handler(args, paths, out, err)
        return code
    except GatewayError as exc:
        err.print(str(exc), markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
