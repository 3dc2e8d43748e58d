"""Arguments of ``nodes ...`` and ``devices ...`` (the handlers live in ``cli/nodes.py`` and
``cli/devices.py``, imported only when one of these commands runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _node_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", nargs="?", help="node id, unique id prefix or display name")
    parser.add_argument("--node", dest="node_option", help="the same, as an option")


def add_node_commands(
    commands: argparse._SubParsersAction[Any],
    add_target_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register ``nodes`` and ``devices`` (called by ``cli/main.py``)."""
    nodes = commands.add_parser("nodes", help="nodes: list, describe, invoke, pair")
    sub = nodes.add_subparsers(dest="nodes_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, text: str, handler: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        add_target_options(parser)
        parser.set_defaults(handler=f"nodes:{handler}")
        return parser

    command("list", "paired and connected nodes", "list_command").add_argument(
        "--connected", action="store_true", help="only nodes connected now"
    )
    _node_arg(command("describe", "one node in detail", "describe_command"))
    invoke = command("invoke", "run a command on a node and print its answer", "invoke_command")
    invoke.add_argument("--node", required=True, help="node id, unique id prefix or display name")
    invoke.add_argument("--command", dest="command_name", required=True, help="e.g. canvas.present")
    invoke.add_argument("--params", default="{}", help="JSON params for the command (default {})")
    invoke.add_argument(
        "--invoke-timeout", type=int, default=30_000, help="ms the node has to answer"
    )
    invoke.add_argument("--idempotency-key", help="default: a fresh UUID")
    command("pending", "node pairing requests waiting for approval", "pending_command")
    for name, text, handler in (
        ("approve", "approve a node pairing request", "approve_command"),
        ("reject", "reject a node pairing request", "reject_command"),
    ):
        command(name, text, handler).add_argument(
            "request_id", metavar="REQUEST", help="request id or a unique prefix of it"
        )
    _node_arg(command("remove", "forget a paired node (and disconnect it)", "remove_command"))
    rename = command("rename", "give a paired node a display name", "rename_command")
    _node_arg(rename)
    rename.add_argument("--name", required=True, help="the new display name")

    devices = commands.add_parser("devices", help="device identities: pairing and tokens")
    dsub = devices.add_subparsers(dest="devices_command", metavar="SUBCOMMAND", required=True)

    def dcommand(name: str, text: str, handler: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = dsub.add_parser(name, help=text)
        add_target_options(parser)
        parser.set_defaults(handler=f"devices:{handler}")
        return parser

    dcommand("list", "pending requests and paired devices", "list_command")
    approve = dcommand("approve", "approve a device pairing request", "approve_command")
    approve.add_argument(
        "request_id", metavar="REQUEST", nargs="?", help="request id or a unique prefix of it"
    )
    approve.add_argument("--latest", action="store_true", help="the newest pending request")
    dcommand("reject", "reject a device pairing request", "reject_command").add_argument(
        "request_id", metavar="REQUEST", help="request id or a unique prefix of it"
    )
    dcommand("remove", "forget a paired device (and disconnect it)", "remove_command").add_argument(
        "device", help="device id or unique prefix"
    )
    for name, text, handler in (
        ("rotate", "issue a new token for one of a device's roles", "rotate_command"),
        ("revoke", "revoke a device's token for a role (disconnects it)", "revoke_command"),
    ):
        parser = dcommand(name, text, handler)
        parser.add_argument("--device", required=True, help="device id or unique prefix")
        parser.add_argument("--role", required=True, choices=["operator", "node"])
        if name == "rotate":
            parser.add_argument(
                "--scope", action="append", help="scope for the new token (repeat); default: as now"
            )
