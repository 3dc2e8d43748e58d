"""Reconnect delays: exponential from 1 s, capped, with jitter (PROTOCOL.md 2.3 and 12)."""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial, initial*factor, ...`` capped at ``maximum``, each jittered.

    The jitter scales every delay by a random factor in ``[1 - jitter, 1]``: the cap is
    never exceeded, and clients dropped by the same gateway restart do not all come back in
    the same instant. This is pure arithmetic; the caller sleeps with ``trio.sleep`` so
    tests can drive it with a mock clock.
    """

    def __init__(
        self,
        *,
        initial: float = 1.0,
        maximum: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum <= 0 or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs initial > 0, maximum > 0, factor >= 1, 0 <= jitter < 1")
        self.initial = min(initial, maximum)
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays have been handed out since the last reset."""
        return self._attempt

    def peek(self) -> float:
        """The next delay before jitter."""
        # Cap the exponent too: factor ** attempt overflows a float long before a client
        # that has been retrying for days stops asking.
        exponent = min(self._attempt, 64)
        return min(self.maximum, self.initial * self.factor**exponent)

    def next(self) -> float:
        delay = self.peek()
        self._attempt += 1
        return delay * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start over at ``initial``: call after a connection succeeded."""
        self._attempt = 0
