"""The client's exception hierarchy.

    GatewayClientError            root; ``str(error)`` is one line a CLI can print as is
    ├── GatewayConnectError       no session: refused, timed out, rejected, closed before hello-ok
    ├── GatewayClosedError        the session's socket closed
    ├── GatewayRpcError           a request got ``res {ok:false}``
    └── GatewayTimeoutError       a request got no final ``res`` in time

Nothing from trio-websocket (``ConnectionClosed``, ``HandshakeError``, exception groups)
reaches the caller; it is translated into one of these.
"""

from __future__ import annotations

from typing import Any

# Retrying with the same secret cannot succeed (PROTOCOL.md 5.3); the reference client also
# stops reconnecting on these instead of hammering the gateway's auth limiter.
TERMINAL_AUTH_CODES = frozenset(
    {"AUTH_TOKEN_MISMATCH", "AUTH_PASSWORD_MISMATCH", "AUTH_TOKEN_MISSING", "AUTH_PASSWORD_MISSING"}
)


def describe_close(code: int | None, reason: str | None) -> str:
    shown = str(code) if code is not None else "no close code"
    return f"gateway closed ({shown}): {reason or 'no close reason'}"


class GatewayClientError(Exception):
    """Root of every error the gateway client raises."""


class GatewayConnectError(GatewayClientError):
    """The connection could not be established, or the gateway rejected the handshake.

    ``error`` is the gateway's ErrorShape dict when it answered ``connect`` with
    ``ok:false`` (e.g. ``{"code": "INVALID_REQUEST", "message": "unauthorized: ...",
    "details": {"code": "AUTH_TOKEN_MISMATCH"}}``); ``close_code``/``close_reason`` are the
    close frame's, when one arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        error: dict[str, Any] | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.close_code = close_code
        self.close_reason = close_reason

    @property
    def code(self) -> str | None:
        """The top-level error code (``INVALID_REQUEST``, ``UNAVAILABLE``, ...), if any."""
        code = (self.error or {}).get("code")
        return code if isinstance(code, str) else None

    @property
    def detail_code(self) -> str | None:
        """``error.details.code`` (``AUTH_TOKEN_MISMATCH``, ``PROTOCOL_MISMATCH``, ...), if any."""
        details = (self.error or {}).get("details")
        code = details.get("code") if isinstance(details, dict) else None
        return code if isinstance(code, str) else None

    @property
    def retry_after_ms(self) -> int | None:
        value = (self.error or {}).get("retryAfterMs")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def terminal(self) -> bool:
        """True when reconnecting with the same credentials cannot succeed."""
        return self.detail_code in TERMINAL_AUTH_CODES


class GatewayClosedError(GatewayClientError):
    """The socket closed (or was already closed) while the operation needed it.

    ``code`` is the WebSocket close code (1012 for a gateway restart, 1006 when the TCP
    connection dropped without a close frame), ``None`` if unknown.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(describe_close(code, reason))
        self.code = code
        self.reason = reason


class GatewayRpcError(GatewayClientError):
    """A request was answered with ``ok:false``.

    Branch on ``code`` / ``details["code"]``; ``message`` is human text and may change.
    ``payload`` is the ``res`` payload, which some failures carry (e.g. a failed ``agent``
    run's ``{runId, status:"error", summary}``).
    """

    def __init__(self, method: str, error: object, payload: object = None) -> None:
        shape: dict[str, Any] = error if isinstance(error, dict) else {}
        code, message = shape.get("code"), shape.get("message")
        self.method = method
        self.code: str = code if isinstance(code, str) and code else "UNKNOWN"
        self.message: str = message if isinstance(message, str) and message else "request failed"
        self.details: Any = shape.get("details")
        retryable = shape.get("retryable")
        self.retryable: bool | None = retryable if isinstance(retryable, bool) else None
        after = shape.get("retryAfterMs")
        valid_after = isinstance(after, int) and not isinstance(after, bool)
        self.retry_after_ms: int | None = after if valid_after else None
        self.payload = payload
        super().__init__(f"{self.code}: {self.message}")


class GatewayTimeoutError(GatewayClientError):
    """No final response arrived within the call's timeout (the request was cancelled)."""

    def __init__(self, timeout: float, method: str | None = None) -> None:
        self.timeout_ms = round(timeout * 1000)
        self.method = method
        super().__init__(f"gateway timeout after {self.timeout_ms}ms")
