"""The wire's error codes and close codes (PROTOCOL.md section 5): a leaf module, so the
error tree (``errors.py``) can name them without importing the frame types."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode:
    """Top-level error codes (section 5.2); nothing else goes on the wire."""

    NOT_LINKED = "NOT_LINKED"
    NOT_PAIRED = "NOT_PAIRED"
    AGENT_TIMEOUT = "AGENT_TIMEOUT"
    AGENT_RESULT_NOT_FOUND = "AGENT_RESULT_NOT_FOUND"
    INVALID_REQUEST = "INVALID_REQUEST"
    FORBIDDEN = "FORBIDDEN"
    APPROVAL_NOT_FOUND = "APPROVAL_NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_MISMATCH = 1002
    INVALID_PAYLOAD = 1007
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    TICK_TIMEOUT = 4000
    CLIENT_INVALIDATED = 4001
