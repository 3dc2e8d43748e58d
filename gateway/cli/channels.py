"""``channels status|start|stop|restart`` and ``pairing list|approve`` (CHANNELS.md 2.5, 3.5, 7.1).

``channels status`` asks the running gateway (``channels.status``); when it cannot be
reached it says so and shows what the config alone can tell. ``pairing`` uses the
gateway's RPCs when it answers and otherwise edits the pairing files itself, under the
same lock the gateway takes -- so approving works with the gateway down, and the running
gateway sees the approval on the next message.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import trio
from gateway_client import GatewayClient, GatewayClientError, GatewayRpcError
from rich.console import Console
from rich.table import Table

from ..channels.accounts import resolve_telegram
from ..channels.pairing import TTL_MS, PairingStore, bootstrap_owner
from ..channels.supervisor import CHANNEL_LABELS
from ..channels.views import account_line, ago, warnings
from ..config.load import load_file
from ..config.paths import Paths
from ..errors import ConfigError, GatewayError
from .rpc import _target, _with_client

SUPPORTED = ("telegram", "whatsapp")


def _call(
    args: argparse.Namespace, paths: Paths, method: str, params: dict[str, Any], timeout_ms: int
) -> Any:
    target = _target(args, paths)

    async def action(client: GatewayClient) -> Any:
        return await client.call(method, params, timeout=timeout_ms / 1000)

    return trio.run(_with_client, target, timeout_ms, action)


def _require_mention_off(paths: Paths) -> dict[tuple[str, str], bool]:
    """Accounts with a group that sets requireMention:false (privacy-mode warning)."""
    try:
        config = load_file(paths.config_path, os.environ).config
    except ConfigError:
        return {}
    out = {}
    for account_id, acct in resolve_telegram(config, os.environ).items():
        off = any(g.require_mention is False for g in acct.groups.values())
        out[("telegram", account_id)] = off
    return out


def render_status(payload: dict[str, Any], mention_off: dict[tuple[str, str], bool]) -> list[str]:
    now = int(payload.get("ts") or time.time() * 1000)
    lines = ["Gateway reachable."]
    warn: list[str] = []
    order = payload.get("channelOrder") or []
    if not order:
        lines.append("No channels configured (add channels.telegram to the config).")
    for channel in order:
        label = (payload.get("channelLabels") or {}).get(channel, channel)
        for snap in (payload.get("channelAccounts") or {}).get(channel, []):
            lines.append(account_line(label, snap, now))
            warn += warnings(
                channel, snap, mention_off.get((channel, snap.get("accountId")), False)
            )
    if warn:
        lines.append("Warnings:")
        lines.extend(warn)
        lines.append("- Run: smart-agent-neo doctor")
    return lines


def config_only(paths: Paths) -> list[str]:
    lines = ["Gateway not reachable; showing config-only status.", f"Config: {paths.config_path}"]
    try:
        config = load_file(paths.config_path, os.environ).config
    except ConfigError as exc:
        lines.append(f"Config invalid: {exc}")
        return lines
    lines.append(f"Mode: {config.gateway.mode or 'unset'}")
    accounts = resolve_telegram(config, os.environ)
    if not accounts:
        lines.append("No channels configured (add channels.telegram to the config).")
    for account_id, acct in accounts.items():
        bits = ["enabled" if acct.enabled else "disabled"]
        bits.append("configured" if acct.configured else "not configured")
        bits += [f"token:{acct.token_source}", f"dm:{acct.dm_policy}"]
        if acct.allow_from:
            bits.append("allow:" + ",".join(acct.allow_from[:2]))
        if acct.token_error:
            bits.append(f"error:{acct.token_error}")
        lines.append(f"- {CHANNEL_LABELS['telegram']} {account_id}: " + ", ".join(bits))
    return lines


def status_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    timeout = args.timeout or (20_000 if args.probe else 10_000)
    params: dict[str, Any] = {"probe": bool(args.probe), "timeoutMs": timeout}
    try:
        payload = _call(args, paths, "channels.status", params, timeout + 5_000)
    except GatewayRpcError as exc:
        err.print(f"{exc.code}: {exc.message}", markup=False)
        return 1
    except GatewayClientError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
            return 1
        for line in config_only(paths):
            out.print(line, markup=False)
        err.print(f"({exc})", markup=False)
        return 1
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    for line in render_status(payload, _require_mention_off(paths)):
        out.print(line, markup=False)
    return 0


_VERBS = {
    "start": ("channels.start", "Started", "started"),
    "stop": ("channels.stop", "Stopped", "stopped"),
    "restart": ("channels.restart", "Restarted", "started"),
    "logout": ("channels.logout", "Logged out", "loggedOut"),
}


def control_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    method, done, flag = _VERBS[args.channels_command]
    params: dict[str, Any] = {"channel": args.channel}
    if args.account:
        params["accountId"] = args.account
    try:
        payload = _call(args, paths, method, params, args.timeout)
    except GatewayRpcError as exc:
        err.print(f"{exc.code}: {exc.message}", markup=False)
        return 1
    except GatewayClientError as exc:
        err.print(f"{exc} (the gateway must be running; start it with `smart-agent-neo gateway`)")
        return 1
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    name = f"{payload.get('channel')}/{payload.get('accountId') or 'all'}"
    if payload.get(flag):
        out.print(f"{done} {name}.", markup=False)
        return 0
    if args.channels_command == "stop":
        out.print(f"Stop requested for {name}, but it has not exited yet.", markup=False)
    elif args.channels_command == "logout":
        out.print(f"Nothing to log out for {name}.", markup=False)
    else:
        out.print(
            f"Start requested for {name}, but the runtime still reports stopped.", markup=False
        )
    return 1


# -- pairing ---------------------------------------------------------------------------------


def _check_channel(name: str) -> str:
    channel = name.strip().lower()
    if channel not in SUPPORTED:
        raise GatewayError(f"unsupported channel: {name} (supported: {', '.join(SUPPORTED)})")
    return channel


def pairing_list_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    channel = _check_channel(args.channel)
    params: dict[str, Any] = {"channel": channel}
    if args.account:
        params["accountId"] = args.account
    try:
        payload = _call(args, paths, "pairing.list", params, args.timeout)
        requests = payload.get("requests") or []
    except GatewayRpcError as exc:
        err.print(f"{exc.code}: {exc.message}", markup=False)
        return 1
    except GatewayClientError:
        now = int(time.time() * 1000)
        store = PairingStore(paths.state_dir, channel)
        requests = [
            {
                "id": r.id,
                "code": r.code,
                "createdAt": r.created_at,
                "lastSeenAt": r.last_seen_at,
                "expiresAt": r.created_at + TTL_MS,
                "accountId": r.account_id,
                "username": r.username,
                "name": r.name,
                "meta": {"username": r.username, "name": r.name, "accountId": r.account_id},
            }
            for r in store.pending(now, args.account)
        ]
    if args.json:
        print(json.dumps({"channel": channel, "requests": requests}, indent=2))
        return 0
    if not requests:
        out.print(f"No pending {channel} pairing requests.", markup=False)
        return 0
    now = int(time.time() * 1000)
    table = Table(box=None, pad_edge=False)
    for column in ("Code", "Sender", "Name", "Account", "Requested", "Expires in"):
        table.add_column(column)
    for r in requests:
        who = r.get("name") or ""
        if r.get("username"):
            who += f" (@{r['username']})"
        left = max(0, int(r["expiresAt"]) - now) // 60_000
        table.add_row(r["code"], r["id"], who, r["accountId"], ago(r["createdAt"], now), f"{left}m")
    out.print(table)
    out.print(f"Approve with: smart-agent-neo pairing approve {channel} <code>", markup=False)
    return 0


def pairing_approve_command(
    args: argparse.Namespace, paths: Paths, out: Console, err: Console
) -> int:
    channel = _check_channel(args.channel)
    params: dict[str, Any] = {"channel": channel, "code": args.code}
    if args.account:
        params["accountId"] = args.account
    if args.notify:
        params["notify"] = True
    note = ""
    try:
        payload = _call(args, paths, "pairing.approve", params, args.timeout)
    except GatewayRpcError as exc:
        err.print(f"{exc.code}: {exc.message}", markup=False)
        return 1
    except GatewayClientError:
        store = PairingStore(paths.state_dir, channel)
        req = store.approve(args.code, args.account, int(time.time() * 1000))
        if req is None:
            err.print(
                f"no pending pairing request with code {args.code.strip().upper()} for {channel}"
                f" (codes expire after 1 hour; see `smart-agent-neo pairing list {channel}`)",
                markup=False,
            )
            return 1
        payload = {"channel": channel, "approved": True, "id": req.id, "accountId": req.account_id}
        payload["notified"] = False
        try:
            payload["owner"] = bootstrap_owner(paths.config_path, channel, req.id, os.environ)
        except (GatewayError, OSError) as exc:
            payload["owner"] = None
            err.print(f"commands.ownerAllowFrom not set: {exc}", markup=False)
        if args.notify:
            note = " (gateway not reachable: the sender was not notified)"
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    told = " and notified them" if payload.get("notified") else note
    out.print(
        f"Approved {channel} sender {payload['id']} (account {payload['accountId']}){told}.",
        markup=False,
    )
    if payload.get("owner"):
        out.print(
            f"Command owner configured {payload['owner']} (commands.ownerAllowFrom was empty).",
            markup=False,
        )
    return 0
