"""``smart-agent-neo message send``: one message through the gateway's ``send`` (OPERATIONS.md F.8).

The message carries an idempotency key (``--idempotency-key``, else a new one) and the
command keeps it across its own retries: when the connection drops after the request went
out, or the gateway answers "draining, retry", the same key is sent again, and the
gateway's outbox answers with the first delivery instead of sending twice. A gateway that
cannot be reached at all fails at once (no direct channel fallback). Local ``--media``
files travel inside the request (``buffer``); URLs are passed on.
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import re
import uuid
from pathlib import Path
from typing import Any

import trio
from gateway_client import (
    GatewayClientError,
    GatewayClosedError,
    GatewayConnectError,
    GatewayRpcError,
    GatewayTimeoutError,
    open_client,
)
from rich.console import Console

from ..config.paths import Paths
from ..config.target import resolve_target, where_we_looked
from ..errors import GatewayError

LABELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}
RETRIES = 3
MAX_FILE_BYTES = 20 * 1024 * 1024
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def build_params(args: argparse.Namespace) -> dict[str, Any]:
    text = args.message or ""
    media: list[str] = args.media or []
    if not text.strip() and not media:
        raise GatewayError("message send: --message or --media is required")
    if not args.target.strip():
        raise GatewayError("message send: --target must not be empty")
    params: dict[str, Any] = {
        "to": args.target.strip(),
        "idempotencyKey": args.idempotency_key or str(uuid.uuid4()),
    }
    if text.strip():
        params["message"] = text
    for flag, key in (
        ("channel", "channel"),
        ("account", "accountId"),
        ("reply_to", "replyToId"),
        ("thread_id", "threadId"),
    ):
        value = getattr(args, flag)
        if value:
            params[key] = value
    if args.silent:
        params["silent"] = True
    urls = [m for m in media if _URL.fullmatch(m)]
    files = [m for m in media if not _URL.fullmatch(m)]
    if len(files) > 1:
        raise GatewayError("--media: one local file per message (pass more as http(s) URLs)")
    if urls:
        params["mediaUrls" if len(urls) > 1 else "mediaUrl"] = urls if len(urls) > 1 else urls[0]
    if files:
        path = Path(files[0]).expanduser()
        try:
            if not path.is_file():
                raise GatewayError(f"--media: {files[0]} is not a file")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise GatewayError(
                    f"--media: {files[0]} is larger than {MAX_FILE_BYTES // 2**20} MB"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise GatewayError(f"--media: cannot read {files[0]}: {exc.strerror}") from None
        params["buffer"] = base64.b64encode(data).decode()
        params["filename"] = path.name
        params["contentType"] = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return params


def summary(payload: dict[str, Any]) -> str:
    label = LABELS.get(str(payload.get("channel")), str(payload.get("channel")))
    if payload.get("deliveryState") == "queued":
        return f"Queued for delivery ({payload.get('runId')})"
    where = payload.get("chatId") or payload.get("toJid")
    to = f" to {where}" if where else ""
    return f"Sent via {label}{to} (message {payload.get('messageId')})."


async def _send(
    target: Any, params: dict[str, Any], timeout_s: float, err: Console, verbose: bool
) -> Any:
    """``send``, again with the same key after a dropped connection or a retryable refusal."""
    attempt = 0
    while True:
        attempt += 1
        try:
            async with open_client(
                target.url, token=target.token, password=target.password, connect_timeout=timeout_s
            ) as client:
                return await client.call("send", params, timeout=timeout_s)
        except GatewayConnectError:
            if attempt == 1:
                raise  # the gateway is down: fail fast
            if attempt > RETRIES:
                raise
        except (GatewayClosedError, GatewayTimeoutError) as exc:
            if attempt > RETRIES:
                raise
            if verbose:
                err.print(f"{exc}; sending again with the same key", markup=False)
        except GatewayRpcError as exc:
            if not (exc.code == "UNAVAILABLE" and exc.retryable) or attempt > RETRIES:
                raise
            if verbose:
                err.print(f"{exc.message}; sending again with the same key", markup=False)
        await trio.sleep(min(5.0, 0.5 * 2 ** (attempt - 1)))


def send_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    params = build_params(args)
    key = params["idempotencyKey"]
    if args.dry_run:
        shown = dict(params)
        if "buffer" in shown:
            shown["buffer"] = f"<{len(base64.b64decode(shown['buffer']))} bytes>"
        print(json.dumps({"method": "send", "params": shown}, indent=2, ensure_ascii=False))
        return 0
    target = resolve_target(paths, url=args.url, token=args.token, password=args.password)
    if args.verbose:
        err.print(f"send {key} via {target.url}", markup=False)
    try:
        payload = trio.run(_send, target, params, args.timeout / 1000, err, args.verbose)
    except GatewayRpcError as exc:
        if args.json:
            error = {"code": exc.code, "message": exc.message, "details": exc.details}
            print(json.dumps({"ok": False, "error": error}, indent=2, ensure_ascii=False))
        else:
            err.print(f"{exc.code}: {exc.message}", markup=False)
        return 1
    except GatewayConnectError as exc:
        err.print(str(exc), markup=False)
        for line in where_we_looked(target, paths):
            err.print(line, markup=False)
        return 1
    except GatewayClientError as exc:
        err.print(
            f"{exc} -- the message may still be delivered; to find out without sending twice, "
            f"run the same command with --idempotency-key {key}",
            markup=False,
        )
        return 1
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        out.print(summary(payload), markup=False, highlight=False)
    return 0
