"""The ``chat`` events of one run: what WebChat clients draw (PROTOCOL.md 8, CONTROL-UI.md 6).

Every run emits them beside its ``agent`` events, whatever started it (``chat.send``, the
``agent`` method, the OpenAI endpoints, the heartbeat): a UI with that session open shows the
reply as it streams, and clients filter by ``sessionKey``.

* ``delta`` carries ``deltaText`` (protocol 4: only what is new) and the cumulative
  ``message``, so a client that joins mid-run can draw the bubble from any one delta. Deltas
  are throttled to one per :data:`DELTA_INTERVAL_S`; what arrives in between is held and sent
  by :meth:`ChatStream.run_flusher` when the interval is up, so a model that pauses never
  leaves the last words unsent.
* Exactly one of ``final`` / ``aborted`` / ``error`` ends the stream; anything still held is
  flushed as a last delta first.
* ``seq`` counts this run's chat events only, from 1 with no gaps (the ``agent`` events have
  their own counter): a client that sees a gap missed an event and reloads history.

The text is the reply as history will show it: steps of a tool-using run are joined with a
blank line, like the run's payloads. The clock is injected; the only I/O is ``emit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import trio

from ..protocol.chat import (
    ChatEventMessage,
    ChatEventPayload,
    ChatState,
    ChatUsage,
    ErrorKind,
    TextBlock,
)

DELTA_INTERVAL_S = 0.05
STEP_SEPARATOR = "\n\n"


@attrs.define(eq=False)
class ChatStream:
    run_id: str
    session_key: str
    agent_id: str
    emit: Callable[[ChatEventPayload], None]
    now_ms: Callable[[], int]
    clock: Callable[[], float] = trio.current_time
    interval: float = DELTA_INTERVAL_S
    text: str = ""  # everything said so far
    sent: int = 0  # how much of ``text`` the deltas have carried
    seq: int = 0
    ended: bool = False
    _last_sent: float = -math.inf
    _step_done: bool = False
    _held: trio.Event = attrs.field(factory=trio.Event)

    # -- what the run reports ------------------------------------------------------------

    def add(self, chunk: str) -> None:
        """New assistant text; sent now, or held until the throttle interval is up."""
        if not chunk or self.ended:
            return
        if self._step_done and self.text:
            self.text += STEP_SEPARATOR
        self._step_done = False
        self.text += chunk
        if self.clock() - self._last_sent >= self.interval:
            self.flush()
        else:
            self._held.set()

    def step_done(self) -> None:
        """A model step ended (a tool call may follow): the next text starts a new paragraph."""
        self._step_done = True

    def flush(self) -> None:
        """Send what is held as one delta (nothing if everything was sent)."""
        if self.ended or self.sent >= len(self.text):
            return
        delta = self.text[self.sent :]
        self.sent = len(self.text)
        self._last_sent = self.clock()
        self.seq += 1
        self.emit(
            ChatEventPayload(
                run_id=self.run_id,
                session_key=self.session_key,
                seq=self.seq,
                state="delta",
                agent_id=self.agent_id,
                delta_text=delta,
                message=self._message(),
            )
        )

    async def run_flusher(self) -> None:
        """Send held text when its interval is up; returns once the stream has ended (the
        run always ends it, whichever way the run ends).

        Cancellation: at any point; held text is flushed by the final event instead."""
        while not self.ended:
            await self._held.wait()
            self._held = trio.Event()
            await trio.sleep_until(self._last_sent + self.interval)
            self.flush()

    # -- how the run ended -------------------------------------------------------------------

    def final(self, usage: ChatUsage | None, stop_reason: str) -> None:
        self._end("final", message=self._message(), usage=usage, stop_reason=stop_reason or "stop")

    def aborted(self, stop_reason: str, error_message: str | None = None) -> None:
        self._end(
            "aborted", message=self._partial(), stop_reason=stop_reason, error_message=error_message
        )

    def error(self, message: str, kind: ErrorKind) -> None:
        self._end(
            "error",
            message=self._partial(),
            error_message=message,
            error_kind=kind,
            stop_reason="error",
        )

    # -- helpers -------------------------------------------------------------------------------

    def _end(
        self,
        state: ChatState,
        *,
        message: ChatEventMessage | None,
        usage: ChatUsage | None = None,
        stop_reason: str | None = None,
        error_message: str | None = None,
        error_kind: ErrorKind | None = None,
    ) -> None:
        if self.ended:
            return
        self.flush()
        self.seq += 1
        self.emit(
            ChatEventPayload(
                run_id=self.run_id,
                session_key=self.session_key,
                seq=self.seq,
                state=state,
                agent_id=self.agent_id,
                message=message,
                usage=usage,
                stop_reason=stop_reason,
                error_message=error_message,
                error_kind=error_kind,
            )
        )
        self.ended = True
        self._held.set()  # let the flusher see the end

    def _message(self) -> ChatEventMessage:
        return ChatEventMessage("assistant", [TextBlock("text", self.text)], self.now_ms())

    def _partial(self) -> ChatEventMessage | None:
        return self._message() if self.text else None
