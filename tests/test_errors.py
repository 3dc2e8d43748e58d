"""The error tree drawn in errors.py is the tree in the code, and each surface reads one
mapping from it (wire code, HTTP status, close code, retryable)."""

from __future__ import annotations

import re

import pytest

from gateway import errors
from gateway.agent.providers.base import ProviderError
from gateway.agent.tools.registry import ToolError
from gateway.lock import LockHeldError
from gateway.protocol.frames import CloseCode, ErrorCode
from gateway.service.errors import ManagerUnavailableError, ServiceError

ELSEWHERE = {
    "ProviderError": ProviderError,
    "ToolError": ToolError,
    "LockHeldError": LockHeldError,
    "ServiceError": ServiceError,
    "ManagerUnavailableError": ManagerUnavailableError,
}


def drawn_tree() -> list[tuple[int, str]]:
    """(depth, class name) for every line of the tree in errors.py's docstring."""
    doc = errors.__doc__ or ""
    rows = []
    for line in doc.splitlines():
        found = re.match(r"^\s{4}((?:[│ ]   )*)(?:[├└]── )?([A-Z][A-Za-z]+)\s", line)
        if found and found.group(2).endswith(
            (
                "Error",
                "Fault",
                "Request",
                "Found",
                "Large",
                "Mismatch",
                "Limited",
                "Paired",
                "Unauthorized",
                "Forbidden",
                "Unavailable",
                "Timeout",
            )
        ):
            depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
            rows.append((depth, found.group(2)))
    return rows


def resolve(name: str) -> type[BaseException]:
    found = getattr(errors, name, None) or ELSEWHERE.get(name)
    assert isinstance(found, type), f"{name} is drawn in errors.py but does not exist"
    return found


def test_the_drawn_tree_is_the_class_tree() -> None:
    rows = drawn_tree()
    assert rows[0] == (0, "GatewayError")
    assert len(rows) >= 25
    parents: list[str] = []
    for depth, name in rows:
        del parents[depth:]
        cls = resolve(name)
        if parents:
            assert cls.__bases__[0] is resolve(parents[-1]), f"{name} is not under {parents[-1]}"
        parents.append(name)


@pytest.mark.parametrize(
    ("error", "code", "status", "close", "retryable"),
    [
        (errors.InvalidRequest("x"), ErrorCode.INVALID_REQUEST, 400, CloseCode.POLICY, None),
        (errors.Forbidden("x"), ErrorCode.FORBIDDEN, 403, CloseCode.POLICY, None),
        (errors.NotPaired("x"), ErrorCode.NOT_PAIRED, 403, CloseCode.POLICY, None),
        (errors.RateLimited("x"), ErrorCode.INVALID_REQUEST, 429, CloseCode.POLICY, True),
        (errors.PayloadTooLarge("x"), ErrorCode.INVALID_REQUEST, 413, CloseCode.TOO_BIG, None),
        (errors.Unavailable("x"), ErrorCode.UNAVAILABLE, 503, CloseCode.TRY_AGAIN_LATER, True),
        (errors.GatewayFault("x"), ErrorCode.UNAVAILABLE, 500, CloseCode.INTERNAL_ERROR, None),
        (errors.AgentTimeout("x"), ErrorCode.AGENT_TIMEOUT, 504, CloseCode.INTERNAL_ERROR, None),
        (
            errors.RpcError(ErrorCode.FORBIDDEN, "x"),
            ErrorCode.FORBIDDEN,
            403,
            CloseCode.POLICY,
            None,
        ),
        (
            errors.SelectError("x", status=404),
            ErrorCode.INVALID_REQUEST,
            404,
            CloseCode.POLICY,
            None,
        ),
    ],
)
def test_one_mapping_for_every_surface(
    error: errors.GatewayError, code: str, status: int, close: int, retryable: bool | None
) -> None:
    assert (error.code, error.http_status, error.close_code) == (code, status, close)
    shape = error.shape()
    assert (shape.code, shape.message, shape.retryable) == (code, "x", retryable)


def test_an_instance_narrows_its_class() -> None:
    error = errors.Unavailable(
        "gateway starting; retry shortly", close_reason="gateway starting", retry_after_ms=500
    )
    assert error.close_reason == "gateway starting"
    assert error.shape().retry_after_ms == 500
    assert errors.Unavailable("x", retryable=False).retryable is False
    assert errors.Unavailable("y").retryable is True  # the class default is untouched
