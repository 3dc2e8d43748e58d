"""Per-connection outbound queue: bounded in bytes, drained by one writer task.

Why a queue of our own: a write to a client that stopped reading waits (shielded, so a frame
is never cut) for buffer space that never comes (STACK-NOTES.md). So broadcasts never await
``send``: they call :meth:`Outbox.offer`, which never blocks -- it enqueues, or applies the
slow-consumer policy right away -- and the connection's writer task drains the queue. One
slow client therefore never delays another, and the gateway decides "slow consumer" from the
bytes it is holding, long before the kernel gives up. The connection's own responses take a
shortcut: the task that made one flushes the queue itself (:meth:`Outbox.flush`; one sender at a
time, in queue order), which spares a writer wake-up per request.

A frame counts against the limit from the moment it is offered until ``send`` returns for it.
When the outbox is idle -- nothing queued, nobody sending -- a peer may write a frame
directly instead (``events.Peer.send_text``): a broadcast to peers that keep up then costs
no queue entry and no writer wake-up per peer; only what the kernel does not take at once
is queued (``offer_framed``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal, Protocol

import trio

Verdict = Literal["queued", "dropped", "close"]
# A text frame: a str, or the UTF-8 pieces of one (a broadcast shares its encoded payload
# between every peer's frame instead of holding a copy per peer: BENCHMARKS.md, memory).
Text = str | tuple[bytes, ...]


class FrameWriter(Protocol):
    """Where an outbox's frames go: the connection's WebSocket."""

    async def send_text(self, text: Text) -> None: ...
    async def write_framed(self, data: bytes) -> None:
        """Bytes already framed (the rest of a frame the kernel took only part of)."""

    async def send_close(self, code: int, reason: str) -> None: ...


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


def frame_size(text: Text) -> int:
    if isinstance(text, tuple):
        return sum(map(len, text))
    return len(text) if text.isascii() else len(text.encode())


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self.dropped = 0
        # made on first use (an idle connection's outbox stays small: BENCHMARKS.md, memory);
        # bytes are frames already framed (see offer_framed)
        self._frames: deque[tuple[Text | bytes, int]] | None = None
        self._wake: trio.Event | None = None
        self.close_frame: tuple[int, str] | None = None
        self.on_close_requested: Callable[[], None] | None = None
        # called whenever the writer is needed (the session starts it on first use)
        self.on_wake: Callable[[], None] | None = None
        self._finished: trio.Event | None = None  # made when first needed (memory)
        self._writing = False  # the writer or a flush is sending; only one at a time

    def offer(self, text: Text, *, droppable: bool = False, wake: bool = True) -> Verdict:
        """Enqueue without blocking, or say why not. Frames after a close request are dropped.

        ``wake=False``: the caller will :meth:`flush` itself right away (a response from the
        task that made it), so the writer task need not be woken for this frame.
        """
        if self.close_frame is not None:
            return "dropped"
        size = frame_size(text)
        verdict = admit(self.queued_bytes, size, droppable, self.limit)
        if verdict == "queued":
            if self._frames is None:
                self._frames = deque()
            self._frames.append((text, size))
            self.queued_bytes += size
            if wake:
                self._wake_writer()
        elif verdict == "dropped":
            self.dropped += 1
        return verdict

    @property
    def finished(self) -> trio.Event:
        """Set once the writer has ended (the close frame is out, or it was cancelled)."""
        if self._finished is None:
            self._finished = trio.Event()
        return self._finished

    @property
    def idle(self) -> bool:
        """Nothing queued, nobody sending, no close: a frame written now is in order."""
        return not self._frames and not self._writing and self.close_frame is None

    def offer_framed(self, data: bytes) -> None:
        """Queue the unsent rest of a frame that was written directly (``idle`` was true,
        the kernel took part of it): it goes first, whatever the limit, and the writer is
        woken for it -- a frame once started must be finished."""
        if self._frames is None:
            self._frames = deque()
        self._frames.append((data, len(data)))
        self.queued_bytes += len(data)
        self._wake_writer()

    def request_close(self, code: int, reason: str) -> None:
        """Send what is queued, then the close frame. The first request wins."""
        if self.close_frame is None:
            self.close_frame = (code, reason)
            self._wake_writer()
            if self.on_close_requested is not None:
                self.on_close_requested()

    @property
    def close_requested(self) -> bool:
        return self.close_frame is not None

    def _wake_writer(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self.on_wake is not None:
            self.on_wake()

    async def flush(self, send: FrameWriter) -> None:
        """Send what is queued from the calling task -- a response goes out from the task
        that made it, without waking the writer. If the writer (or another flush) is
        already sending, that one drains the queue and this returns at once. The close
        frame is always left to the writer."""
        if await self._drain_unless_busy(send) and self.close_frame is not None:
            self._wake_writer()

    async def _drain_unless_busy(self, send: FrameWriter) -> bool:
        """Drain the queue; ``False`` (and nothing sent) if another task is sending."""
        if self._writing:
            return False
        self._writing = True
        try:
            await self._drain(send)
        finally:
            self._writing = False
        return True

    async def _drain(self, send: FrameWriter) -> None:
        frames = self._frames
        while frames:
            text, size = frames[0]
            if isinstance(text, bytes):
                await send.write_framed(text)
            else:
                await send.send_text(text)
            frames.popleft()
            self.queued_bytes -= size
        if self._frames is frames:
            self._frames = None  # an idle connection keeps no queue

    async def run(self, send: FrameWriter) -> None:
        """The writer: drain frames in order, then send the close frame and return.

        Cancellation: cancelling the writer between frames is immediate; while a frame is
        in a shielded write it is not -- the session aborts the socket for that.
        """
        try:
            while True:
                # made before draining: a frame or close offered meanwhile sets it, so the
                # wait below returns at once; if another task was sending, its flush wakes
                # us when it is done
                self._wake = trio.Event()
                if await self._drain_unless_busy(send) and self.close_frame is not None:
                    code, reason = self.close_frame
                    await send.send_close(code, reason)
                    return
                await self._wake.wait()
        finally:
            self.finished.set()
