"""Inbound lanes: a chat's messages are handled one at a time, in the order they came.

Each busy chat (or forum topic) has one task in its transport's work nursery. The task
takes the chat's messages in order and hands each to the transport while it holds a token
of the manager's lane limiter (``agents.defaults.maxConcurrent``), and it ends when the
chat has nothing left: an idle chat costs nothing. Chats proceed side by side.

A message whose handling raises is marked dropped in the ledger, with the error, and the
lane goes on: a message that breaks the code must not break the channel -- without this,
the account would restart, meet the same row, and loop.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from .slot import AccountSlot
from .telegram.inbound import Message

if TYPE_CHECKING:
    from .service import ChannelService

# the transport's handling of one message: (message, its ledger keys, fresh)
Handle = Callable[[Message, list[str], bool], Awaitable[None]]


class Lanes:
    def __init__(
        self,
        service: ChannelService,
        slot: AccountSlot,
        handle: Handle,
        log: logging.Logger,
    ) -> None:
        self.service = service
        self.slot = slot
        self.handle = handle
        self.log = log  # the transport's, so a failure is logged under its channel
        # per chat/topic: (message, its ledger keys, fresh) in arrival order
        self._queues: dict[str, deque[tuple[Message, list[str], bool]]] = {}

    def put(self, nursery: trio.Nursery, msg: Message, keys: list[str], fresh: bool) -> None:
        """Queue ``msg`` on its lane, starting the lane's task in ``nursery`` if it is idle."""
        queue = self._queues.get(msg.lane)
        if queue is not None:
            queue.append((msg, keys, fresh))
            return
        self._queues[msg.lane] = deque([(msg, keys, fresh)])
        nursery.start_soon(self._run, msg.lane, name=f"{self.slot.channel} lane {msg.lane}")

    async def _run(self, lane: str) -> None:
        queue = self._queues[lane]
        limiter = self.service.manager.lane_limiter
        try:
            while queue:
                msg, keys, fresh = queue[0]
                async with limiter:
                    try:
                        await self.handle(msg, keys, fresh)
                    except Exception as exc:
                        self.log.exception(
                            "%s message %s could not be handled", self.slot.prefix, keys[0]
                        )
                        await self.service.finish(keys, "dropped", f"internal error: {exc!r}")
                queue.popleft()
        finally:
            self._queues.pop(lane, None)
