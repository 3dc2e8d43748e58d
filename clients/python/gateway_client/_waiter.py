"""Matching ``res`` frames to the call waiting for them (PROTOCOL.md 4.1, 4.2)."""

from __future__ import annotations

import trio

from ._errors import GatewayClientError
from ._events import Frame


class Waiter:
    """One in-flight call: the reader fills it, ``call()`` waits on it."""

    __slots__ = ("done", "error", "expect_final", "frame")

    def __init__(self, expect_final: bool) -> None:
        self.expect_final = expect_final
        self.done = trio.Event()
        self.frame: Frame | None = None
        self.error: GatewayClientError | None = None

    def offer(self, frame: Frame) -> bool:
        """Take a ``res``; ``False`` if it is only the ``accepted`` ack of a two-stage call."""
        payload = frame.get("payload")
        interim = (
            frame.get("ok") is True
            and isinstance(payload, dict)
            and payload.get("status") == "accepted"
        )
        if interim and self.expect_final:
            return False
        self.frame = frame
        self.done.set()
        return True

    def fail(self, error: GatewayClientError) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()
