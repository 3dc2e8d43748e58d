"""Rate limit for identical log lines (FAILURE-MODES.md items 16 and 27). Pure: time is passed in.

A client with a stale token reconnecting every second, or an error raised on every tick,
would otherwise write the same line forever. Per distinct line (everything but the time)
the first ``max_repeats`` within ``window`` seconds pass; the rest are counted, and once
that window is over the count is handed back (``due``) so the sink can write one summary
line ("... suppressed 312 identical lines") in place of them.

The table is bounded (``max_keys``): when full, the oldest window is closed early.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")

SWEEP_INTERVAL = 1.0  # seconds between scans for windows that ended


@attrs.define
class _Window(Generic[T]):
    start: float
    sample: T
    count: int = 1
    suppressed: int = 0


@attrs.frozen
class Suppressed(Generic[T]):
    sample: T  # the first line of the window, to describe what was suppressed
    count: int
    window: float


class RepeatLimiter(Generic[T]):
    def __init__(self, max_repeats: int, window: float, max_keys: int = 1024) -> None:
        self.max_repeats = max_repeats
        self.window = window
        self.max_keys = max_keys
        self._windows: dict[Hashable, _Window[T]] = {}
        self._ended: list[Suppressed[T]] = []
        self._last_sweep = float("-inf")
        self.suppressed_total = 0

    def configure(self, max_repeats: int, window: float) -> None:
        self.max_repeats = max_repeats
        self.window = window

    def admit(self, key: Hashable, sample: T, now: float) -> bool:
        """True if this line should be written."""
        current = self._windows.get(key)
        if current is not None and now - current.start >= self.window:
            self._close(key, current)
            current = None
        if current is None:
            if len(self._windows) >= self.max_keys:
                oldest = next(iter(self._windows))
                self._close(oldest, self._windows[oldest])
            self._windows[key] = _Window(now, sample)
            return True
        current.count += 1
        if current.count <= self.max_repeats:
            return True
        current.suppressed += 1
        self.suppressed_total += 1
        return False

    def due(self, now: float, *, flush: bool = False) -> list[Suppressed[T]]:
        """Summaries of windows that ended with lines suppressed (all of them if ``flush``)."""
        if flush or now - self._last_sweep >= SWEEP_INTERVAL:
            self._last_sweep = now
            for key, current in list(self._windows.items()):
                if flush or now - current.start >= self.window:
                    self._close(key, current)
        ended, self._ended = self._ended, []
        return ended

    def _close(self, key: Hashable, current: _Window[T]) -> None:
        del self._windows[key]
        if current.suppressed:
            self._ended.append(Suppressed(current.sample, current.suppressed, self.window))
