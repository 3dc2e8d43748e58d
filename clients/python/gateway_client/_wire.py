"""Frame encoding and decoding, shared by the handshake and the session reader."""

from __future__ import annotations

import json
from typing import Any

import trio_websocket

from ._errors import GatewayConnectError, describe_close


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def decode(message: str | bytes) -> dict[str, Any] | None:
    """The frame as a dict, or ``None`` for anything that is not a JSON object.

    The gateway only sends JSON objects; tolerating junk (rather than failing the session)
    matches the reference client, which drops frames its guards reject.
    """
    try:
        text = message.decode() if isinstance(message, bytes) else message
        frame = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    return frame if isinstance(frame, dict) else None


def close_info(exc: trio_websocket.ConnectionClosed) -> tuple[int | None, str]:
    reason = exc.reason
    if reason is None:
        return None, ""
    return reason.code, reason.reason or ""


def closed_before_hello(exc: trio_websocket.ConnectionClosed) -> GatewayConnectError:
    code, reason = close_info(exc)
    return GatewayConnectError(describe_close(code, reason), close_code=code, close_reason=reason)
