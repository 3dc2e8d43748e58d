"""Retry timing for channel accounts (CHANNELS.md 2.3, 3.3). Pure: randomness passed in.

* :func:`restart_delay` -- between failed starts of an account: 5 s doubling to 5 min,
  jittered +-20 %, with **no attempt cap** (a channel is never stopped forever);
* :class:`LoopBackoff` -- inside a running transport (409 conflicts, network errors):
  2 s growing x1.8 to 30 s, jittered +-25 %, reset by the first success.
"""

from __future__ import annotations

from collections.abc import Callable

RESTART_BASE_MS = 5_000
RESTART_MAX_MS = 300_000
RESTART_JITTER = 0.2
STABLE_RESET_MS = 600_000  # 10 min of running resets the attempt counter
FAILED_RETRY_MS = 600_000  # a `failed` account is retried every 10 min anyway
STOP_WAIT_MS = 5_000

LOOP_BASE_MS = 2_000
LOOP_MAX_MS = 30_000
LOOP_FACTOR = 1.8
LOOP_JITTER = 0.25

Uniform = Callable[[float, float], float]


def restart_delay_ms(attempt: int, uniform: Uniform) -> int:
    """delay(n) = min(300 000, 5 000 x 2^(n-1)) x U(0.8, 1.2), n >= 1."""
    n = max(1, attempt)
    base = RESTART_MAX_MS if n > 12 else min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (n - 1))
    return int(base * uniform(1 - RESTART_JITTER, 1 + RESTART_JITTER))


class LoopBackoff:
    def __init__(self, uniform: Uniform) -> None:
        self.uniform = uniform
        self.failures = 0

    def next_ms(self) -> int:
        self.failures += 1
        base = min(LOOP_MAX_MS, LOOP_BASE_MS * LOOP_FACTOR ** (self.failures - 1))
        return int(base * self.uniform(1 - LOOP_JITTER, 1 + LOOP_JITTER))

    def reset(self) -> None:
        self.failures = 0
