"""``system event|heartbeat|presence`` (OPERATIONS.md G.4): tell the agent something, read
the last heartbeat, pause or resume heartbeats, list presence. One RPC each (cli/rpc.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway_client import GatewayClient
from rich.console import Console

from ..config.paths import Paths
from .rpc import run_action


def _print(args: argparse.Namespace, out: Console, payload: object, line: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        out.print(line, markup=False)


def event_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    """``system event --text T [--mode now|next-heartbeat] [--session KEY] [--agent ID]``:
    the ``wake`` RPC."""
    params: dict[str, Any] = {"text": args.text, "mode": args.mode}
    if args.session:
        params["sessionKey"] = args.session
    if args.agent:
        params["agentId"] = args.agent

    async def action(client: GatewayClient) -> Any:
        return await client.call("wake", params, timeout=args.timeout / 1000)

    payload, _, code = run_action(args, paths, err, action)
    if code == 0:
        when = "a heartbeat reads it now" if args.mode == "now" else "the next turn reads it"
        _print(args, out, payload, f"Queued for the agent ({when}).")
    return code


def heartbeat_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    """``system heartbeat last|enable|disable``."""
    if args.heartbeat_action == "last":
        method, params = "last-heartbeat", {}
    else:
        method, params = "set-heartbeats", {"enabled": args.heartbeat_action == "enable"}

    async def action(client: GatewayClient) -> Any:
        return await client.call(method, params, timeout=args.timeout / 1000)

    payload, _, code = run_action(args, paths, err, action)
    if code != 0:
        return code
    if method == "set-heartbeats":
        state = "resumed" if params["enabled"] else "paused"
        _print(args, out, payload, f"Heartbeats {state}.")
    elif payload is None:
        _print(args, out, payload, "No heartbeat yet.")
    else:
        bits = [str(payload.get("status"))]
        for key in ("indicatorType", "channel", "to", "reason"):
            if payload.get(key):
                bits.append(f"{key}: {payload[key]}")
        if payload.get("durationMs") is not None:
            bits.append(f"{payload['durationMs']} ms")
        line = " · ".join(bits)
        if payload.get("preview"):
            line += f"\n{payload['preview']}"
        _print(args, out, payload, line)
    return 0


def presence_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        return await client.call("system-presence", {}, timeout=args.timeout / 1000)

    payload, _, code = run_action(args, paths, err, action)
    if code == 0:
        lines = [str(entry.get("text") or entry.get("host") or "?") for entry in payload or []]
        _print(args, out, payload, "\n".join(lines) or "No presence entries.")
    return code
