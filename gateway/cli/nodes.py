"""``nodes list|describe|invoke|pending|approve|reject|remove|rename``: parse, call the
gateway, render (and the helpers ``devices ...`` shares).

A node or request may be named by its full id, a unique id prefix, or (nodes) its display
name; anything ambiguous is an error that lists the candidates. ``--json`` prints the
gateway's payload as it came.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway_client import GatewayClient
from rich.console import Console, RenderableType

from ..config.paths import Paths
from ..errors import PeerError
from .nodes_view import (
    Done,
    InvokeResult,
    NodeDetail,
    NodeList,
    NodePending,
    Row,
    short_id,
)
from .rpc import run_action

MIN_PREFIX = 4


def now_ms() -> int:
    return int(time.time() * 1000)


def pick(query: str, rows: list[Row], key: str, *, names: tuple[str, ...] = (), kind: str) -> str:
    """The id in ``rows`` that ``query`` names: exact id, else a unique display name
    (case-insensitive), else a unique id prefix of at least 4 characters."""
    ids = [str(r[key]) for r in rows]
    if query in ids:
        return query
    lowered = query.strip().lower()
    by_name = {str(r[key]) for r in rows for n in names if str(r.get(n) or "").lower() == lowered}
    if len(by_name) == 1:
        return by_name.pop()
    by_prefix = {i for i in ids if len(query) >= MIN_PREFIX and i.startswith(query)}
    matches = by_name or by_prefix
    if len(matches) == 1:
        return matches.pop()
    if matches:
        listed = ", ".join(sorted(short_id(m) for m in matches))
        raise PeerError(f"{kind} '{query}' is ambiguous: it matches {listed}; give more of the id")
    listing = "nodes pending" if kind == "node request" else f"{kind.split()[0]}s list"
    raise PeerError(f"no {kind} matches '{query}' (see: smart-agent-neo {listing})")


def emit(out: Console, args: argparse.Namespace, payload: object, view: RenderableType) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        out.print(view)


def call(
    args: argparse.Namespace,
    paths: Paths,
    err: Console,
    action: Callable[[GatewayClient], Awaitable[Any]],
) -> tuple[Any, int]:
    payload, _, code = run_action(args, paths, err, action)
    return payload, code


def _node_query(args: argparse.Namespace) -> str:
    query = getattr(args, "node_option", None) or getattr(args, "node", None)
    if not query:
        raise PeerError("name the node: smart-agent-neo nodes <command> <node> (or --node <node>)")
    return str(query)


async def _node_id(client: GatewayClient, query: str, timeout: float) -> str:
    listing = await client.call("node.list", {}, timeout=timeout)
    return pick(query, listing.get("nodes") or [], "nodeId", names=("displayName",), kind="node")


# -- nodes ---------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        return await client.call("node.list", {}, timeout=args.timeout / 1000)

    payload, code = call(args, paths, err, action)
    if code == 0:
        nodes = payload.get("nodes") or []
        if args.connected:
            nodes = [n for n in nodes if n.get("connected")]
            payload = {**payload, "nodes": nodes}
        emit(out, args, payload, NodeList(nodes, now_ms()))
    return code


def describe_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    query = _node_query(args)

    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        node_id = await _node_id(client, query, timeout)
        return await client.call("node.describe", {"nodeId": node_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, NodeDetail(payload, now_ms()))
    return code


def invoke_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise PeerError(f"--params: invalid JSON ({exc})") from None
    invoke_timeout: int = args.invoke_timeout
    # the CLI waits a little longer than the gateway, so the gateway's answer (even a
    # timeout) is what the user sees
    wait = max(args.timeout, invoke_timeout + 5_000) / 1000

    async def action(client: GatewayClient) -> Any:
        node_id = await _node_id(client, args.node, args.timeout / 1000)
        request = {
            "nodeId": node_id,
            "command": args.command_name,
            "params": params,
            "timeoutMs": invoke_timeout,
            "idempotencyKey": args.idempotency_key or str(uuid.uuid4()),
        }
        return await client.call("node.invoke", request, timeout=wait)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, InvokeResult(payload))
    return code


def pending_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        return await client.call("node.pair.list", {}, timeout=args.timeout / 1000)

    payload, code = call(args, paths, err, action)
    if code == 0:
        pending = payload.get("pending") or []
        emit(out, args, {"pending": pending}, NodePending(pending, now_ms()))
    return code


async def _node_request(client: GatewayClient, query: str, timeout: float) -> str:
    pending = (await client.call("node.pair.list", {}, timeout=timeout)).get("pending") or []
    return pick(query, pending, "requestId", kind="node request")


def approve_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        request_id = await _node_request(client, args.request_id, timeout)
        return await client.call("node.pair.approve", {"requestId": request_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        node = payload["node"]
        name = node.get("displayName") or short_id(node["nodeId"])
        emit(out, args, payload, Done(f"approved node {name} ({node['nodeId']})"))
    return code


def reject_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        request_id = await _node_request(client, args.request_id, timeout)
        return await client.call("node.pair.reject", {"requestId": request_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, Done(f"rejected request {payload['requestId']}"))
    return code


def remove_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    query = _node_query(args)

    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        listing = await client.call("node.pair.list", {}, timeout=timeout)
        node_id = pick(
            query, listing.get("paired") or [], "nodeId", names=("displayName",), kind="node"
        )
        return await client.call("node.pair.remove", {"nodeId": node_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, Done(f"removed node {payload['nodeId']}"))
    return code


def rename_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    query = _node_query(args)

    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        node_id = await _node_id(client, query, timeout)
        return await client.call(
            "node.rename", {"nodeId": node_id, "displayName": args.name}, timeout=timeout
        )

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, Done(f"renamed {payload['nodeId']} to {payload['displayName']}"))
    return code
