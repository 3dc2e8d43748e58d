"""Errors of service management; each is one line for the user plus optional hints.

GatewayError (gateway.errors)
└── ServiceError                  a lifecycle step failed (exit 1); ``hints`` say what to do
    └── ManagerUnavailableError   systemd/launchd cannot be reached (exit 69, EX_UNAVAILABLE)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import GatewayFault

EX_UNAVAILABLE = 69


class ServiceError(GatewayFault):
    def __init__(self, message: str, *, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hints = list(hints)


class ManagerUnavailableError(ServiceError):
    """The service manager cannot be reached; ``written`` says what was still put on disk."""

    exit_code = EX_UNAVAILABLE

    def __init__(
        self, message: str, *, hints: Sequence[str] = (), written: Sequence[str] = ()
    ) -> None:
        super().__init__(message, hints=hints)
        self.written = list(written)
