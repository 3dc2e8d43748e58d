"""``devices list|approve|reject|remove|rotate|revoke``: parse, call the gateway, render.

Devices and requests are named by full id or a unique prefix; ``--json`` prints the
gateway's payload as it came.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway_client import GatewayClient
from rich.console import Console

from ..config.paths import Paths
from ..errors import PeerError
from .nodes import call, emit, now_ms, pick
from .nodes_view import DeviceList, Done, short_id


async def _device_id(client: GatewayClient, query: str, timeout: float) -> str:
    listing = await client.call("device.pair.list", {}, timeout=timeout)
    return pick(
        query, listing.get("paired") or [], "deviceId", names=("displayName",), kind="device"
    )


def list_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        return await client.call("device.pair.list", {}, timeout=args.timeout / 1000)

    payload, code = call(args, paths, err, action)
    if code == 0:
        view = DeviceList(payload.get("pending") or [], payload.get("paired") or [], now_ms())
        emit(out, args, payload, view)
    return code


def approve_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    if not args.request_id and not args.latest:
        raise PeerError("give a request id, or --latest for the newest pending request")

    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        pending = (await client.call("device.pair.list", {}, timeout=timeout)).get("pending")
        if args.request_id is not None:
            request_id = pick(args.request_id, pending or [], "requestId", kind="device request")
        elif not pending:
            raise PeerError("no pending device pairing requests")
        else:
            request_id = pending[0]["requestId"]  # newest first
        return await client.call("device.pair.approve", {"requestId": request_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        device = payload["device"]
        who = device.get("displayName") or device.get("clientId") or short_id(device["deviceId"])
        roles = ", ".join(device.get("roles") or [])
        emit(out, args, payload, Done(f"approved device {who} ({device['deviceId']}) for {roles}"))
    return code


def reject_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        pending = (await client.call("device.pair.list", {}, timeout=timeout)).get("pending")
        request_id = pick(args.request_id, pending or [], "requestId", kind="device request")
        return await client.call("device.pair.reject", {"requestId": request_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, Done(f"rejected request {payload['requestId']}"))
    return code


def remove_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        device_id = await _device_id(client, args.device, timeout)
        return await client.call("device.pair.remove", {"deviceId": device_id}, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(out, args, payload, Done(f"removed device {payload['deviceId']}"))
    return code


def rotate_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        device_id = await _device_id(client, args.device, timeout)
        params: dict[str, Any] = {"deviceId": device_id, "role": args.role}
        if args.scope:
            params["scopes"] = list(args.scope)
        return await client.call("device.token.rotate", params, timeout=timeout)

    payload, code = call(args, paths, err, action)
    if code == 0:
        delivery = (
            "the device gets it on its next connect"
            if payload.get("tokenDelivery") != "in-band"
            else "returned to this device"
        )
        text = f"rotated the {payload['role']} token of {payload['deviceId']} ({delivery})"
        emit(out, args, payload, Done(text))
    return code


def revoke_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    async def action(client: GatewayClient) -> Any:
        timeout = args.timeout / 1000
        device_id = await _device_id(client, args.device, timeout)
        return await client.call(
            "device.token.revoke", {"deviceId": device_id, "role": args.role}, timeout=timeout
        )

    payload, code = call(args, paths, err, action)
    if code == 0:
        emit(
            out,
            args,
            payload,
            Done(f"revoked the {payload['role']} token of {payload['deviceId']}"),
        )
    return code
