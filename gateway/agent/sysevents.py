"""Queued system events: what happened outside a conversation, told to its next turn.

``system-event`` (PROTOCOL.md 7.4), ``POST /hooks/wake`` and a finished hook run put a line
of text in a session's queue (the default agent's main session unless a ``sessionKey`` is
given). The next agent turn of that session -- a heartbeat, a chat message, an ``agent``
call -- takes the whole queue and reads it before the user's message, as ``System:`` lines;
the events are gone from the queue after that (they are in the transcript with the turn).
``status.queuedSystemEvents`` lists the main session's queue. Pure: no I/O, clock passed in.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

MAX_PER_SESSION = 20  # the oldest go first
MAX_SESSIONS = 1000  # sessions with a queue; the least recently fed goes first


@attrs.frozen
class SystemEvent:
    text: str
    ts: int  # wall-clock ms


@attrs.define
class SystemEvents:
    queues: OrderedDict[str, deque[SystemEvent]] = attrs.field(factory=OrderedDict)

    def enqueue(self, session_key: str, text: str, ts: int) -> bool:
        """Queue ``text`` for the session; ``False`` when it repeats the last queued one."""
        queue = self.queues.get(session_key)
        if queue is None:
            queue = self.queues[session_key] = deque(maxlen=MAX_PER_SESSION)
            while len(self.queues) > MAX_SESSIONS:
                self.queues.popitem(last=False)
        else:
            self.queues.move_to_end(session_key)
        if queue and queue[-1].text == text:
            return False
        queue.append(SystemEvent(text, ts))
        return True

    def peek(self, session_key: str) -> list[str]:
        return [e.text for e in self.queues.get(session_key, ())]

    def take(self, session_key: str) -> list[SystemEvent]:
        queue = self.queues.pop(session_key, None)
        return list(queue) if queue else []

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())


def with_events(message: str, events: Sequence[SystemEvent]) -> str:
    """The turn's text: one ``System: [time] text`` line per event, then the message."""
    if not events:
        return message
    lines = []
    for event in events:
        when = datetime.fromtimestamp(event.ts / 1000, UTC).isoformat(timespec="seconds")
        lines.append(f"System: [{when}] {event.text}")
    return "\n".join(lines) + "\n\n" + message
