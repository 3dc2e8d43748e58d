"""Server-sent events decoder (pure): text chunks in, complete events out.

Follows the WHATWG rules that matter for model APIs: events end at a blank line, ``data:``
lines are joined with newlines, ``event:`` names the event, lines starting with ``:`` are
comments (keep-alives), and ``\\r\\n``/``\\r`` line endings are accepted.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SseEvent:
    event: str  # "message" unless the server named it
    data: str


@attrs.define
class SseDecoder:
    _buffer: str = ""
    _event: str = ""
    _data: list[str] = attrs.field(factory=list)

    def feed(self, chunk: str) -> list[SseEvent]:
        self._buffer += chunk.replace("\r\n", "\n").replace("\r", "\n")
        events: list[SseEvent] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SseEvent]:
        """Whatever a server that closed without a final blank line left pending."""
        events = self.feed("\n") if self._buffer else []
        event = self._line("")
        return [*events, event] if event is not None else events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None
