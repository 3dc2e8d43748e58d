"""RPC commands: ``gateway call`` and ``health`` (``status`` lives in ``gateway_status``).

Each opens one connection with the client library, makes one call, renders the payload
(Rich, or raw JSON with ``--json``) and exits. A gateway that cannot be reached is one
clear error plus where we looked; there is no fallback.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
from gateway_client import GatewayClient, GatewayClientError, GatewayRpcError, open_client
from rich.console import Console, RenderableType

from ..config.paths import Paths
from ..config.target import Target, resolve_target, where_we_looked
from ..errors import GatewayError
from . import interrupt
from .progress import working
from .render import HealthReport

T = TypeVar("T")


def _target(args: argparse.Namespace, paths: Paths) -> Target:
    port = getattr(args, "call_port", None)  # gateway call --port: the loopback shortcut
    if port is not None:
        if args.url:
            raise GatewayError("--port cannot be combined with --url")
        local = resolve_target(paths, url=None, token=args.token, password=args.password)
        return Target(
            f"ws://127.0.0.1:{port}", local.token, local.password, "local loopback", "--port"
        )
    return resolve_target(paths, url=args.url, token=args.token, password=args.password)


async def _with_client(
    target: Target, timeout_ms: int, action: Callable[[GatewayClient], Awaitable[T]]
) -> T:
    timeout = timeout_ms / 1000
    async with open_client(
        target.url, token=target.token, password=target.password, connect_timeout=timeout
    ) as client:
        return await action(client)


def _run(
    args: argparse.Namespace,
    paths: Paths,
    err: Console,
    action: Callable[[GatewayClient], Awaitable[T]],
) -> tuple[T | None, Target, int]:
    """Run ``action`` against the target; on failure print the error block and return code 1."""
    target = _target(args, paths)
    try:
        with working(err, f"Calling the gateway at {target.url}..."):
            result = interrupt.run(_with_client, target, args.timeout, action)
    except GatewayRpcError as exc:
        err.print(f"{exc.code}: {exc.message}", markup=False)
        if exc.details is not None:
            err.print(json.dumps(exc.details, ensure_ascii=False), markup=False)
        return None, target, 1
    except GatewayClientError as exc:
        err.print(str(exc), markup=False)
        for line in where_we_looked(target, paths):
            err.print(line, markup=False)
        return None, target, 1
    return result, target, 0


def run_action(
    args: argparse.Namespace,
    paths: Paths,
    err: Console,
    action: Callable[[GatewayClient], Awaitable[T]],
) -> tuple[T | None, Target, int]:
    """One connection, one ``action``: what every RPC command of the CLI does (exit code 1
    and a clear error block when it fails)."""
    return _run(args, paths, err, action)


def _emit(
    out: Console, args: argparse.Namespace, payload: object, view: RenderableType | None
) -> None:
    if args.json or view is None:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        out.print(view)


def call_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise GatewayError(f"--params: invalid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise GatewayError("--params must be a JSON object")

    async def action(client: GatewayClient) -> Any:
        return await client.call(
            args.method, params, timeout=args.timeout / 1000, expect_final=args.expect_final
        )

    payload, _, code = _run(args, paths, err, action)
    if code == 0:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    return code


async def _timed(
    client: GatewayClient, method: str, params: dict[str, Any], timeout: float
) -> tuple[Any, int]:
    start = trio.current_time()
    payload = await client.call(method, params, timeout=timeout)
    return payload, int((trio.current_time() - start) * 1000)


def health_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    params = {"probe": True} if args.probe else {}
    result, target, code = _run(
        args, paths, err, lambda c: _timed(c, "health", params, args.timeout / 1000)
    )
    if result is not None:
        payload, latency = result
        _emit(out, args, payload, HealthReport(target.url, latency, payload))
    return code
