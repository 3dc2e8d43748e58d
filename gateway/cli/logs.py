"""``smart-agent-neo logs``: the gateway's file log over RPC (``logs.tail``), once or followed.

It talks to the gateway, not the disk, so it works the same through an SSH tunnel
(``--url ws://127.0.0.1:18789 --token ...``). ``--follow`` polls with the returned cursor
every ``--interval`` ms on one connection that reconnects by itself (the client library's
backoff: 1 s doubling to 30 s); while the gateway is away -- a restart, a deploy -- it says
so on stderr and carries on from the same cursor when it is back. It gives up after
``GIVE_UP_S`` without a gateway, or at once when the credentials are refused.

Without ``--follow``, if the local gateway cannot be reached at all, it reads the local log
file directly and says so (OPERATIONS.md F.4).

``--json`` prints one object per line: ``{"type": "meta"|"log"|"notice"|"raw"|"error", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from typing import Any

import trio
from gateway_client import (
    GatewayClient,
    GatewayClientError,
    GatewayConnectError,
    GatewayRpcError,
    open_client,
)
from rich.console import Console

from ..config.load import load_file
from ..config.paths import Paths
from ..config.target import Target, resolve_target, where_we_looked
from ..errors import GatewayError
from ..logs.files import target_for
from ..logs.tail import read_tail
from ..protocol.logs import MAX_LIMIT, MAX_MAX_BYTES
from . import interrupt
from .consoles import SafeConsole
from .logview import parse_line, render_line

GIVE_UP_S = 120.0  # about what 8 reconnect attempts with backoff up to 30 s add up to


class Printer:
    """Writes log lines and notices, human (Rich) or ``--json``; flushes after each batch so
    a pipe (``| grep``) sees lines as they arrive."""

    def __init__(self, args: argparse.Namespace, out: Console, err: Console) -> None:
        self.json = bool(args.json)
        self.utc = bool(args.utc)
        self.out = out
        self.err = err
        if args.plain:
            self.out = SafeConsole(
                no_color=True, highlight=False, soft_wrap=True, force_terminal=False
            )

    def batch(self, payload: dict[str, Any], *, following: bool = False) -> None:
        if self.json:
            meta = {k: payload.get(k) for k in ("file", "cursor", "size", "truncated", "reset")}
            self._json({"type": "meta", **meta})
        elif payload.get("reset"):
            self.notice("log file rotated or fell behind; continuing from its end")
        elif following and payload.get("truncated"):
            self.notice("older lines skipped (more than --limit/--max-bytes)")
        for raw in payload.get("lines") or []:
            parsed = parse_line(raw)
            if self.json:
                self._json(parsed.record() if parsed else {"type": "raw", "raw": raw})
            elif parsed is None:
                self.out.print(raw, markup=False, highlight=False)
            else:
                self.out.print(render_line(parsed, utc=self.utc))
        self.flush()

    def notice(self, message: str) -> None:
        if self.json:
            self._json({"type": "notice", "message": message})
        else:
            self.err.print(f"[logs] {message}", markup=False, style="yellow")
        self.flush()

    def error(self, message: str) -> None:
        if self.json:
            self._json({"type": "error", "message": message})
        self.err.print(message, markup=False)
        self.flush()

    def _json(self, value: object) -> None:
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        sys.stdout.flush()
        self.out.file.flush()


def _check(args: argparse.Namespace) -> None:
    for flag, value, low, high in (
        ("--limit", args.limit, 1, MAX_LIMIT),
        ("--max-bytes", args.max_bytes, 1, MAX_MAX_BYTES),
        ("--interval", args.interval, 100, 3_600_000),
        ("--timeout", args.timeout, 1, 3_600_000),
    ):
        if not low <= value <= high:
            raise GatewayError(f"{flag}: expected an integer {low}-{high}, got {value}")


def logs_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    _check(args)
    target = resolve_target(paths, url=args.url, token=args.token, password=args.password)
    printer = Printer(args, out, err)
    try:
        return interrupt.run(_main, args, target, printer)
    except GatewayConnectError as exc:
        if args.follow or target.source != "local loopback" or exc.error is not None:
            return _unreachable(printer, exc, target, paths)
        return _read_local(printer, exc, paths, args)


def _unreachable(printer: Printer, exc: GatewayClientError, target: Target, paths: Paths) -> int:
    printer.error(str(exc))
    for line in where_we_looked(target, paths):
        printer.err.print(line, markup=False)
    if isinstance(exc, GatewayConnectError) and exc.error is None:
        printer.err.print(f"Is the gateway running? `{paths.cli('doctor')}` checks.", markup=False)
    return 1


def _read_local(
    printer: Printer, exc: GatewayClientError, paths: Paths, args: argparse.Namespace
) -> int:
    config = load_file(paths.config_path, os.environ).config
    log = target_for(paths.state_dir, paths.profile, config.logging.file)
    try:
        tail = read_tail(log, date.today(), None, args.limit, args.max_bytes)
    except OSError as read_error:
        printer.error(f"{exc}; and the local log could not be read: {read_error}")
        printer.err.print(f"Run `{paths.cli('doctor')}` to find out why.", markup=False)
        return 1
    printer.notice(f"gateway unreachable ({exc}); reading the local file {tail.file}")
    printer.batch(
        {
            "file": tail.file,
            "cursor": tail.cursor,
            "size": tail.size,
            "lines": tail.lines,
            "truncated": tail.truncated,
            "reset": tail.reset,
        }
    )
    return 0


async def _main(args: argparse.Namespace, target: Target, printer: Printer) -> int:
    async with open_client(
        target.url,
        token=target.token,
        password=target.password,
        connect_timeout=args.timeout / 1000,
        reconnect=args.follow,
    ) as client:
        if not args.follow:
            try:
                printer.batch(await _tail(client, args, None))
            except GatewayClientError as exc:
                printer.error(str(exc))
                return 1
            return 0
        async with client.subscribe("shutdown") as shutdowns:
            return await _follow(client, args, printer, shutdowns)


async def _tail(
    client: GatewayClient, args: argparse.Namespace, cursor: int | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": args.limit, "maxBytes": args.max_bytes}
    if cursor is not None:
        params["cursor"] = cursor
    payload = await client.call("logs.tail", params, timeout=args.timeout / 1000)
    if not isinstance(payload, dict):
        raise GatewayClientError(f"logs.tail returned {type(payload).__name__}, not an object")
    return payload


def why_gone(shutdowns: trio.MemoryReceiveChannel[dict[str, Any]], exc: Exception) -> str:
    """Why the gateway went away: its ``shutdown`` event says "gateway stopping" or
    "gateway restarting" -- the 1012 close itself says "service restart" either way."""
    reason = None
    while True:
        try:
            frame = shutdowns.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        payload = frame.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
            reason = payload["reason"]
            expected = payload.get("restartExpectedMs")
            if isinstance(expected, int) and not isinstance(expected, bool):
                reason += f", back in about {expected / 1000:g}s"
    return reason or str(exc)


async def _follow(
    client: GatewayClient,
    args: argparse.Namespace,
    printer: Printer,
    shutdowns: trio.MemoryReceiveChannel[dict[str, Any]],
) -> int:
    cursor: int | None = None
    file: str | None = None
    while True:
        try:
            payload = await _tail(client, args, cursor)
            if file is not None and payload.get("file") != file and not payload.get("reset"):
                # a new day's file (or another state dir after a restart): the cursor belonged
                # to the old file, so read the new one from its start instead
                payload = await _tail(client, args, 0)
        except GatewayRpcError as exc:
            if exc.code != "UNAVAILABLE":
                printer.error(str(exc))
                return 1
            printer.notice(str(exc))  # e.g. "log read failed": keep trying
        except GatewayClientError as exc:
            printer.notice(f"gateway unavailable ({why_gone(shutdowns, exc)}); reconnecting")
            try:
                with trio.fail_after(GIVE_UP_S):
                    await client.wait_connected()
            except trio.TooSlowError:
                printer.error(f"gave up: no gateway for {GIVE_UP_S:.0f}s")
                return 1
            except GatewayClientError as final:
                printer.error(str(final))
                return 1
            why_gone(shutdowns, exc)  # a stop seen while away belongs to the old session
            printer.notice("gateway reconnected")
            continue
        else:
            printer.batch(payload, following=cursor is not None)
            cursor, file = int(payload.get("cursor") or 0), str(payload.get("file"))
        await trio.sleep(args.interval / 1000)
