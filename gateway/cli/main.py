"""``smart-agent-neo``: argument parsing and dispatch only.

Global flags come before the command (``smart-agent-neo --dev gateway``). Every command
returns an exit code; expected failures are ``GatewayError``s printed as one line on stderr
(no traceback) with the error's exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .. import __version__
from ..config.paths import Paths, resolve_paths
from ..errors import GatewayError
from ..logs.entry import LEVELS
from .consoles import consoles
from .durations import duration
from .nodes_args import add_node_commands

if TYPE_CHECKING:
    from ..service.host import Host


class Parser(argparse.ArgumentParser):
    """Every parser of the CLI: subcommand parsers are made from their parent's class, so
    a new subcommand inherits this. ``allow_abbrev=False``: a prefix of a flag is an error,
    never another flag (``agent --to 123`` must not become ``--token 123``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    # --port, --bind, --auth, --tailscale and --ws-log are checked by the command, not by
    # argparse: a bad value is the runbook's one line (`Invalid --bind (use ...)`), exit 1
    parser.add_argument("--port", help="port (default: env, config, 18789)")
    parser.add_argument("--bind", help="loopback | lan | tailnet | auto | custom")
    parser.add_argument("--host", help="bind address for --bind custom")
    parser.add_argument("--token", help="shared token clients must present")
    parser.add_argument("--password", help="shared password clients must present")
    parser.add_argument("--password-file", help="read the shared password from this file")
    parser.add_argument("--auth", dest="auth_mode", help="token | password | none")
    parser.add_argument(
        "--tailscale", help="off (serve and funnel are not supported by this gateway yet)"
    )
    parser.add_argument(
        "--tailscale-reset-on-exit", action="store_true", help="with --tailscale serve|funnel"
    )
    parser.add_argument(
        "--dev",
        dest="gateway_dev",
        action="store_true",
        help="the dev profile (as `--dev gateway`)",
    )
    parser.add_argument(
        "--ws-log", help="auto | compact | full (full: every WebSocket request on the console)"
    )
    parser.add_argument("--compact", action="store_true", help="same as --ws-log compact")
    parser.add_argument("--verbose", action="store_true", help="mirror debug logs to the console")
    parser.add_argument(
        "--force",
        action="store_true",
        help="stop a gateway of ours holding the port or this config's lock, then start",
    )
    parser.add_argument(
        "--log-level",
        choices=list(LEVELS),
        help="file and console log level (default: logging.level / logging.consoleLevel)",
    )
    parser.add_argument(
        "--allow-unconfigured",
        action="store_true",
        help="start without a config file / without gateway.mode=local",
    )
    parser.set_defaults(handler="run:command")


def _add_target_options(parser: argparse.ArgumentParser, *, timeout_ms: int = 10_000) -> None:
    parser.add_argument("--url", help="gateway WebSocket URL (needs explicit --token/--password)")
    parser.add_argument("--token")
    parser.add_argument("--password")
    parser.add_argument(
        "--timeout",
        type=duration("ms"),
        default=timeout_ms,
        metavar="MS",
        help=f"milliseconds, or a duration like 30s (default {timeout_ms})",
    )
    parser.add_argument("--json", action="store_true", help="print only JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="smart-agent-neo", description="smart-agent-neo gateway")
    parser.add_argument(
        "-V", "--version", action="version", version=f"smart-agent-neo {__version__}"
    )
    parser.add_argument(
        "--dev", action="store_true", help="use the isolated dev profile (port 19001)"
    )
    parser.add_argument("--profile", help="named profile: state in ~/.smart-agent-neo-<name>")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument(
        "--log-level",
        dest="global_log_level",
        choices=list(LEVELS),
        help="the gateway's file and console log level (as `gateway --log-level`)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gateway = commands.add_parser("gateway", help="run the gateway (foreground) or talk to it")
    _add_run_options(gateway)
    gateway_commands = gateway.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND")
    _add_run_options(gateway_commands.add_parser("run", help="run the gateway in the foreground"))

    call = gateway_commands.add_parser("call", help="call one RPC method and print its payload")
    call.add_argument("method")
    call.add_argument("--params", default="{}", help="JSON object (default {})")
    call.add_argument("--expect-final", action="store_true", help="wait past an 'accepted' ack")
    call.add_argument(
        "--port", dest="call_port", type=int, help="the gateway on 127.0.0.1:PORT (not with --url)"
    )
    _add_target_options(call)
    call.set_defaults(handler="rpc:call_command")

    for name, target in (("health", gateway_commands), ("health", commands)):
        health = target.add_parser(name, help="gateway health snapshot")
        _add_target_options(health)
        health.add_argument("--probe", action="store_true", help="force a live probe")
        health.add_argument(
            "--verbose",
            "--debug",
            dest="probe",
            action="store_true",
            help="same as --probe: live probes of every channel account",
        )
        health.set_defaults(handler="rpc:health_command")

    config = commands.add_parser("config", help="read, change and check the config file")
    config_commands = config.add_subparsers(
        dest="config_command", metavar="SUBCOMMAND", required=True
    )
    get = config_commands.add_parser("get", help="print the effective value of a key (JSON)")
    get.add_argument("key", help="dotted key path, e.g. gateway.port")
    get.set_defaults(handler="config_cmd:get_command")
    set_ = config_commands.add_parser("set", help="set a key (validated; written atomically)")
    set_.add_argument("key")
    set_.add_argument("value", help="JSON5 value; bare words are strings")
    set_.set_defaults(handler="config_cmd:set_command")
    unset = config_commands.add_parser("unset", help="remove a key (validated; written atomically)")
    unset.add_argument("key")
    unset.set_defaults(handler="config_cmd:unset_command")
    validate = config_commands.add_parser("validate", help="check the file like start-up does")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(handler="config_cmd:validate_command")
    config_commands.add_parser("file", help="print the config file's path").set_defaults(
        handler="config_cmd:file_command"
    )
    config_commands.add_parser("schema", help="print the config's JSON Schema").set_defaults(
        handler="config_cmd:schema_command"
    )
    setup = commands.add_parser("setup", help='create the config with gateway.mode "local"')
    setup.add_argument("--workspace", help="the agents' workspace (default: <state dir>/workspace)")
    setup.set_defaults(handler="config_cmd:setup_command")

    tail = commands.add_parser("logs", help="show the gateway's file log (over RPC)")
    _add_target_options(tail, timeout_ms=30_000)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    tail.add_argument("--limit", type=int, default=200, help="at most N lines per read")
    tail.add_argument("--max-bytes", type=int, default=250_000, help="at most N bytes per read")
    tail.add_argument("--interval", type=int, default=1000, help="poll interval (ms) with --follow")
    tail.add_argument("--plain", action="store_true", help="no colours or styling")
    tail.add_argument(
        "--no-color", dest="plain", action="store_true", help="same as --plain (or NO_COLOR=1)"
    )
    zone = tail.add_mutually_exclusive_group()
    zone.add_argument("--utc", action="store_true", help="show times in UTC")
    zone.add_argument(
        "--local-time", dest="utc", action="store_false", help="local times (default)"
    )
    tail.set_defaults(handler="logs:logs_command")

    _add_service_commands(gateway_commands)
    _add_gateway_status(gateway_commands)
    # the reference's legacy spelling of the service commands (OPERATIONS.md E)
    daemon = commands.add_parser(
        "daemon", help="alias: gateway install|uninstall|start|stop|restart|status"
    )
    daemon_commands = daemon.add_subparsers(
        dest="gateway_command", metavar="SUBCOMMAND", required=True
    )
    _add_service_commands(daemon_commands)
    _add_gateway_status(daemon_commands)

    run_agent = commands.add_parser("agent", help="send a message to an agent, stream the reply")
    run_agent.add_argument("--message", "-m", required=True, help="what to ask")
    run_agent.add_argument(
        "--session",
        "--session-id",
        dest="session",
        help="session key (default: the agent's main session, or the --to peer's session)",
    )
    run_agent.add_argument("--agent", help="agent id (default: the configured default agent)")
    run_agent.add_argument(
        "--thinking",
        choices=("off", "minimal", "low", "medium", "high", "xhigh"),
        help="thinking level, passed to the run (OPERATIONS F.9; models without one ignore it)",
    )
    run_agent.add_argument(
        "--timeout",
        type=duration("s"),
        metavar="SECONDS",
        help="seconds, or a duration like 500ms or 2m (default: agents.defaults.timeoutSeconds)",
    )
    run_agent.add_argument(
        "--url", help="gateway WebSocket URL (needs explicit --token/--password)"
    )
    run_agent.add_argument("--token")
    run_agent.add_argument("--password")
    run_agent.add_argument("--json", action="store_true", help="print only the final JSON")
    run_agent.add_argument(
        "--verbose",
        dest="agent_verbose",
        choices=("on", "off"),
        help="the run's verbose level (accepted; this gateway's runs have no verbose output)",
    )
    run_agent.add_argument(
        "--local",
        action="store_true",
        help="run the turn here, without a gateway (same agents, sessions and transcripts)",
    )
    _add_agent_delivery_options(run_agent)
    run_agent.set_defaults(handler="agent:agent_command")

    status = commands.add_parser("status", help="overall summary (works with the gateway down)")
    _add_target_options(status)
    status.add_argument(
        "--deep", action="store_true", help="live channel probes and system-level service scans"
    )
    status.add_argument(
        "--all", action="store_true", help="everything: --deep plus the port, lock and service"
    )
    status.add_argument("--usage", action="store_true", help="(accepted; no usage data is kept)")
    status.add_argument(
        "--verbose", "--debug", action="store_true", help="say how the gateway target was chosen"
    )
    status.set_defaults(handler="gateway_status:overview_command")

    dashboard = commands.add_parser("dashboard", help="print (and open) the Control UI's URL")
    dashboard.add_argument("--no-open", action="store_true", help="only print the URL")
    dashboard.add_argument("--json", action="store_true", help="print only JSON")
    dashboard.add_argument(
        "--token-link", action="store_true", help="also print a link that signs in (terminal only)"
    )
    dashboard.set_defaults(handler="dashboard:command")
    _add_channel_commands(commands)
    _add_message_commands(commands)
    _add_system_commands(commands)
    add_node_commands(commands, _add_target_options)

    doctor_parser = commands.add_parser("doctor", help="check config, secrets, service and ports")
    doctor_parser.add_argument(
        "--fix", "--repair", action="store_true", help="repair what is safely fixable"
    )
    doctor_parser.add_argument(
        "--yes", "--non-interactive", action="store_true", help="never ask (doctor never asks)"
    )
    doctor_parser.add_argument(
        "--force", action="store_true", help="with --fix: also rewrite a customised service unit"
    )
    doctor_parser.add_argument(
        "--deep", action="store_true", help="also scan system-level gateway-like services"
    )
    doctor_parser.add_argument(
        "--generate-gateway-token",
        action="store_true",
        help="create the gateway token file if no token is configured",
    )
    doctor_parser.add_argument("--json", action="store_true", help="print only JSON")
    doctor_parser.set_defaults(handler="doctor:command")
    return parser


def _add_channel_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """channels status|start|stop|restart; pairing list|approve (cli/channels.py)."""
    channels = commands.add_parser("channels", help="messaging channels: status, start, stop")
    channel_commands = channels.add_subparsers(
        dest="channels_command", metavar="SUBCOMMAND", required=True
    )
    status = channel_commands.add_parser("status", help="each channel account's state")
    _add_target_options(status, timeout_ms=0)
    status.add_argument("--probe", action="store_true", help="live probes (getMe, webhook)")
    status.set_defaults(handler="channels:status_command")
    for verb, text in (
        ("start", "start a channel's accounts (clears a manual stop, backoff and the breaker)"),
        ("stop", "stop a channel's accounts (no auto-restart until started again)"),
        ("restart", "stop, wait for the exit, start"),
        ("logout", "WhatsApp: stop and mark not linked (credentials stay in the config)"),
    ):
        control = channel_commands.add_parser(verb, help=text)
        control.add_argument("--channel", required=True, help="channel id: telegram | whatsapp")
        control.add_argument("--account", help="one account (default: all of the channel)")
        _add_target_options(control)
        control.set_defaults(handler="channels:control_command")

    pairing = commands.add_parser("pairing", help="approve people who message your bots")
    pairing_commands = pairing.add_subparsers(
        dest="pairing_command", metavar="SUBCOMMAND", required=True
    )
    listing = pairing_commands.add_parser("list", help="pending pairing requests")
    listing.add_argument("channel", help="channel id, e.g. telegram")
    listing.add_argument("--account", help="only this account's requests")
    _add_target_options(listing)
    listing.set_defaults(handler="channels:pairing_list_command")
    approve = pairing_commands.add_parser("approve", help="let a sender talk to the assistant")
    approve.add_argument("channel", help="channel id, e.g. telegram")
    approve.add_argument("code", help="the 8-character pairing code the sender received")
    approve.add_argument("--account", help="the account the request belongs to")
    approve.add_argument("--notify", action="store_true", help="tell the sender they are in")
    _add_target_options(approve)
    approve.set_defaults(handler="channels:pairing_approve_command")


def _add_agent_delivery_options(parser: argparse.ArgumentParser) -> None:
    """agent --to/--channel/--deliver (CHANNELS.md 5.3): where the reply goes."""
    parser.add_argument("--to", help="a chat id / +E.164 number: picks the peer's session")
    parser.add_argument("--channel", help="telegram | whatsapp | last (default: the only one)")
    parser.add_argument("--account", help="the channel account (default: its defaultAccount)")
    parser.add_argument("--thread-id", help="a Telegram forum topic")
    parser.add_argument("--reply-to", help="deliver to this target (used when there is no --to)")
    parser.add_argument("--reply-channel", help="the channel of --reply-to")
    parser.add_argument("--reply-account", help="the account of --reply-to")
    parser.add_argument(
        "--deliver", action="store_true", help="send the reply out through the channel"
    )
    parser.add_argument(
        "--best-effort-deliver",
        action="store_true",
        help="with --deliver: no route is not an error (the reply just stays here)",
    )


def _add_system_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """system event|heartbeat|presence (cli/system.py; OPERATIONS.md G.4)."""
    system = commands.add_parser("system", help="system events, heartbeats, presence")
    system_commands = system.add_subparsers(
        dest="system_command", metavar="SUBCOMMAND", required=True
    )
    event = system_commands.add_parser(
        "event", help="queue a system event for the agent (and wake it)"
    )
    event.add_argument("--text", required=True, help="what happened")
    event.add_argument(
        "--mode",
        choices=("now", "next-heartbeat"),
        default="now",
        help="now: a heartbeat reads it at once (default); next-heartbeat: the next turn",
    )
    event.add_argument("--session", help="the session (default: the agent's main session)")
    event.add_argument("--agent", help="the agent (default: the default agent)")
    _add_target_options(event)
    event.set_defaults(handler="system:event_command")
    beat = system_commands.add_parser("heartbeat", help="the agent heartbeat")
    beat.add_argument("heartbeat_action", choices=("last", "enable", "disable"))
    _add_target_options(beat)
    beat.set_defaults(handler="system:heartbeat_command")
    presence = system_commands.add_parser("presence", help="connected instances")
    _add_target_options(presence)
    presence.set_defaults(handler="system:presence_command")


def _add_message_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """message send (cli/message.py)."""
    message = commands.add_parser("message", help="send messages through the gateway's channels")
    message_commands = message.add_subparsers(
        dest="message_command", metavar="SUBCOMMAND", required=True
    )
    send = message_commands.add_parser(
        "send", help="send a message (durable and idempotent: retried with the same key)"
    )
    send.add_argument("--target", required=True, help="chat id, @channel, +E.164 number")
    send.add_argument("--message", "-m", help="the text")
    send.add_argument(
        "--media", action="append", metavar="PATH|URL", help="a file or URL (repeatable)"
    )
    send.add_argument("--channel", help="telegram | whatsapp (required if both are set up)")
    send.add_argument("--account", help="the channel account (default: its defaultAccount)")
    send.add_argument("--reply-to", help="the message id to reply to")
    send.add_argument("--thread-id", help="a Telegram forum topic")
    send.add_argument("--silent", action="store_true", help="no notification sound")
    send.add_argument(
        "--idempotency-key", help="send at most once per key (default: a new key per run)"
    )
    send.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    send.add_argument("--verbose", action="store_true", help="say where and with which key")
    _add_target_options(send, timeout_ms=30_000)
    send.set_defaults(handler="message:send_command")


def _add_gateway_status(gateway_commands: argparse._SubParsersAction[Any]) -> None:
    parser = gateway_commands.add_parser(
        "status", help="supervisor, port, config and RPC probe of this profile's gateway"
    )
    _add_target_options(parser)
    parser.add_argument("--deep", action="store_true", help="also scan system units")
    parser.add_argument("--no-probe", action="store_true", help="skip the RPC probe")
    parser.add_argument(
        "--require-rpc", action="store_true", help="exit 1 unless the RPC probe answers"
    )
    parser.set_defaults(handler="gateway_status:command")


def _add_service_commands(gateway_commands: argparse._SubParsersAction[Any]) -> None:
    """gateway install | uninstall | start | stop | restart (systemd / launchd)."""
    install = gateway_commands.add_parser("install", help="install and start the gateway service")
    install.add_argument("--force", action="store_true", help="rewrite and restart even if current")
    install.add_argument("--port", type=int, help="pin this port in the service command")
    install.add_argument(
        "--allow-unconfigured", action="store_true", help="service runs without gateway.mode=local"
    )
    install.set_defaults(handler="service:install_command")
    uninstall = gateway_commands.add_parser(
        "uninstall", help="stop, disable and remove the service"
    )
    uninstall.set_defaults(handler="service:uninstall_command")
    parsers = [install, uninstall]
    for action, text in (
        ("start", "start the installed service"),
        ("stop", "stop the service (it stays enabled)"),
        ("restart", "restart the service through the service manager"),
    ):
        parser = gateway_commands.add_parser(action, help=text)
        parser.set_defaults(handler="service:control_command")
        parsers.append(parser)
    for parser in parsers:
        parser.add_argument("--system", action="store_true", help="system-wide systemd unit")
        parser.add_argument("--dry-run", action="store_true", help="print what would be done")
        parser.add_argument("--json", action="store_true", help="print only JSON")


Handler = Callable[[argparse.Namespace, Paths, Console, Console], int]


def _handler(spec: str) -> Handler:
    """``"module:function"`` in gateway.cli, imported only when that command runs: `status`
    need not pay for importing the server, and `gateway run` not for the service tooling."""
    module, _, name = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(f"gateway.cli.{module}"), name)
    return handler


def _paths(args: argparse.Namespace, host: Host | None) -> Paths:
    dev = args.dev or getattr(args, "gateway_dev", False)
    if dev and args.profile:
        raise GatewayError("Cannot combine --dev with --profile")
    profile = "dev" if dev else args.profile
    if host is not None:
        return resolve_paths(profile, host.env, host.home)
    return resolve_paths(profile, os.environ, Path.home())


def main(argv: Sequence[str] | None = None, *, host: Host | None = None) -> int:
    """``host`` replaces the machine for service commands (tests); ``None`` = this one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # not `args.host`: that is `gateway --host`
    args.machine = host
    no_color = args.no_color or bool(os.environ.get("NO_COLOR"))
    out, err = consoles(no_color)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        paths = _paths(args, host)
        code: int = _handler(args.handler)(args, paths, out, err)
        return code
    except GatewayError as exc:
        err.print(str(exc), markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `... --json | head`: the reader left; no traceback, and no second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except BaseException as exc:
        problem = operational(exc)
        if problem is None:
            raise
        err.print(problem, markup=False)
        return 1


def operational(exc: BaseException) -> str | None:
    """One line for an operating-system failure (permissions, a full disk, a missing
    directory) that reached the top: it is the user's to fix, so no traceback. ``None`` for
    anything else (a bug keeps its traceback)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if not isinstance(exc, OSError) or isinstance(exc, BrokenPipeError):
        return None
    what = exc.strerror or str(exc)
    where = f": {exc.filename}" if exc.filename else ""
    return f"error: {what}{where}"
