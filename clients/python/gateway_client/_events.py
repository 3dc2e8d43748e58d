"""Event fan-out to subscribers, and the ``seq`` gap record (PROTOCOL.md 4.3)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

log = logging.getLogger("gateway_client")

Frame = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Gap:
    """Events ``expected .. received-1`` never arrived (dropped for a slow consumer).

    Events are never replayed; the client refreshes ``health`` and ``system-presence``
    and tells subscribers with a ``{"type": "gap", ...}`` frame.
    """

    expected: int
    received: int

    @property
    def missed(self) -> int:
        return self.received - self.expected


@dataclass(eq=False, slots=True)
class _Subscriber:
    channel: trio.MemorySendChannel[Frame]
    events: frozenset[str] | None
    missed: int = 0

    def wants(self, frame: Frame) -> bool:
        # A gap concerns every subscriber: whatever it filters on may be among the losses.
        if self.events is None or frame.get("type") != "event":
            return True
        return frame.get("event") in self.events


class Fanout:
    """Delivers frames to subscribers without ever blocking the connection's reader."""

    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []
        self._closed = False

    @asynccontextmanager
    async def subscription(
        self, events: frozenset[str] | None, buffer: int
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Frame]]:
        send, receive = trio.open_memory_channel[Frame](buffer)
        subscriber = _Subscriber(send, events)
        if self._closed:
            send.close()  # the client has given up: iteration ends at once
        else:
            self._subscribers.append(subscriber)
        try:
            with receive:
                yield receive
        finally:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            send.close()

    def publish(self, frame: Frame) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.wants(frame):
                continue
            try:
                subscriber.channel.send_nowait(frame)
            except trio.WouldBlock:
                subscriber.missed += 1
                log.debug(
                    "subscriber buffer full; dropped %s", frame.get("event", frame.get("type"))
                )
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(subscriber)

    def close(self) -> None:
        """End every subscription's iteration: no more frames will come."""
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.channel.close()
        self._subscribers.clear()
