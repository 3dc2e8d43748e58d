"""Per-connection outbound queue: bounded in bytes, drained by one writer task.

Why a queue of our own: hypercorn writes to the socket inside a *shielded* cancel scope, so
an ASGI ``send`` to a client that stopped reading blocks and nothing can cancel it
(STACK-NOTES.md). So nobody but the connection's writer ever awaits ``send``: broadcasts
call :meth:`Outbox.offer`, which never blocks -- it enqueues, or applies the slow-consumer
policy right away. One slow client therefore never delays another, and the gateway decides
"slow consumer" from the bytes it is holding, long before the kernel gives up.

A frame counts against the limit from the moment it is offered until ``send`` returns for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import trio

Verdict = Literal["queued", "dropped", "close"]
SendFn = Callable[[dict[str, Any]], Awaitable[None]]


def admit(queued_bytes: int, frame_bytes: int, droppable: bool, limit: int) -> Verdict:
    """The slow-consumer policy, in one place.

    A frame is queued while the buffer stays within ``limit`` (``policy.maxBufferedBytes``);
    an empty buffer always takes one frame, so a single large response is never undeliverable.
    Past the limit a droppable event (tick, presence, ...) is skipped -- its ``seq`` is still
    consumed, so the client sees the gap -- and anything else closes the connection (1008).
    """
    if queued_bytes == 0 or queued_bytes + frame_bytes <= limit:
        return "queued"
    return "dropped" if droppable else "close"


def frame_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self.dropped = 0
        self._frames: deque[tuple[str, int]] = deque()
        self._wake = trio.Event()
        self.close_frame: tuple[int, str] | None = None
        self.close_requested = trio.Event()
        self.on_close_requested: Callable[[], None] | None = None
        self.finished = trio.Event()

    def offer(self, text: str, *, droppable: bool = False) -> Verdict:
        """Enqueue without blocking, or say why not. Frames after a close request are dropped."""
        if self.close_frame is not None:
            return "dropped"
        size = frame_size(text)
        verdict = admit(self.queued_bytes, size, droppable, self.limit)
        if verdict == "queued":
            self._frames.append((text, size))
            self.queued_bytes += size
            self._wake.set()
        elif verdict == "dropped":
            self.dropped += 1
        return verdict

    def request_close(self, code: int, reason: str) -> None:
        """Send what is queued, then the close frame. The first request wins."""
        if self.close_frame is None:
            self.close_frame = (code, reason)
            self.close_requested.set()
            self._wake.set()
            if self.on_close_requested is not None:
                self.on_close_requested()

    async def run(self, send: SendFn) -> None:
        """The writer: drain frames in order, then send the close frame and return.

        Cancellation: cancelling the writer between frames is immediate; while a frame is in
        hypercorn's shielded write it is not -- the session aborts the socket for that.
        """
        try:
            while True:
                while self._frames:
                    text, size = self._frames[0]
                    await send({"type": "websocket.send", "text": text})
                    self._frames.popleft()
                    self.queued_bytes -= size
                if self.close_frame is not None:
                    code, reason = self.close_frame
                    await send({"type": "websocket.close", "code": code, "reason": reason})
                    return
                await self._wake.wait()
                self._wake = trio.Event()
        finally:
            self.finished.set()
