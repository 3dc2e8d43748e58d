"""The event-loop watchdog (FAILURE-MODES 26): notice when the loop is blocked, and by whom.

Everything the gateway does shares one thread. A handler that blocks it -- a synchronous
file read on a slow disk, a regex gone quadratic, a CPU-bound loop -- stalls every client at
once, and nothing else would say so. Two parts:

* :func:`watchdog_loop`, a trio task, wakes every :data:`BEAT_S` and measures how late it
  woke (the scheduling delay every task suffered meanwhile). Each delay is observed in the
  ``event_loop_lag_seconds`` histogram; one beyond ``gateway.watchdog.thresholdMs`` is
  counted (``event_loop_blocked``) and logged as a warning naming the task that held the
  loop, with where it was.
* :class:`Sampler`, a plain thread, is how the culprit is known: while the loop is late by
  more than half the threshold, it looks at the main thread's stack (``sys._current_frames``)
  -- the task that is running *is* the one blocking. Its root coroutine names the task; the
  innermost frame says where it was. The thread does nothing else and costs nothing when the
  loop is healthy (one ``Event.wait`` per beat).

It only ever logs: a watchdog that killed or restarted the gateway mid-work would be worse
than the stall (FAILURE-MODES 26). It starts once the gateway is ready, so a cold start's
imports and first health probe are never reported, and the first beat is not judged.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("gateway.watchdog")

BEAT_S = 0.25
_TRIO_CORE = os.sep + os.path.join("trio", "_core") + os.sep
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@attrs.frozen
class Culprit:
    """What the main thread was running while the loop was blocked."""

    task: str  # the task's root coroutine, module.qualname
    where: str  # the innermost frame: file:line in function

    def __str__(self) -> str:
        return f"{self.task} (at {self.where})"


def culprit(frame: FrameType | None) -> Culprit | None:
    """The task and place of a stack sampled from the event loop's thread: the frames from
    the innermost one up to trio's scheduler; the outermost of them is the task's root."""
    if frame is None:
        return None
    innermost = frame
    root: FrameType | None = None
    while frame is not None and _TRIO_CORE not in frame.f_code.co_filename:
        root = frame
        frame = frame.f_back
    if root is None:
        return None  # trio itself (or nothing of a task) was running
    module = root.f_globals.get("__name__", "?")
    code = innermost.f_code
    return Culprit(
        f"{module}.{root.f_code.co_qualname}",
        f"{_short(code.co_filename)}:{innermost.f_lineno} in {code.co_qualname}",
    )


def _short(path: str) -> str:
    return os.path.relpath(path, _HERE) if path.startswith(_HERE) else path


def _virtual_clock() -> bool:
    """Under a test's virtual clock (trio's MockClock) there is no real stall to measure,
    and a beat every 250 ms would keep an autojumping clock from jumping."""
    from trio.testing import MockClock

    return isinstance(trio.lowlevel.current_clock(), MockClock)


class Sampler(threading.Thread):
    """Watches the beat the trio task keeps; samples the loop thread's stack when it is late."""

    def __init__(self, loop_thread: int, late_after: float) -> None:
        super().__init__(name="event-loop-watchdog", daemon=True)
        self.loop_thread = loop_thread
        self.late_after = late_after
        self.beat = time.monotonic()
        self.sample: Culprit | None = None  # of the current stall (cleared by the loop)
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = min(BEAT_S, self.late_after / 2) if self.late_after > 0 else BEAT_S
        while not self.stopping.wait(interval):
            if time.monotonic() - self.beat > self.late_after:
                # Keep the latest sample of a stall: a long one is the same culprit throughout.
                found = culprit(sys._current_frames().get(self.loop_thread))
                if found is not None:
                    self.sample = found


async def watchdog_loop(rt: Runtime) -> None:
    """Measure the loop's scheduling delay every :data:`BEAT_S`; report long stalls.

    Cancellation: stops the sampler thread and returns.
    """
    threshold_ms = rt.settings.config.gateway.watchdog.threshold_ms
    if not threshold_ms or _virtual_clock():
        return
    sampler = Sampler(threading.get_ident(), threshold_ms / 2000)
    sampler.start()
    try:
        first = True
        while True:
            started = time.monotonic()
            sampler.beat = started
            await trio.sleep(BEAT_S)
            woke = time.monotonic()
            sampler.beat = woke
            lag = max(0.0, woke - started - BEAT_S)
            if first:  # the first beat may still carry start-up work
                first = False
                continue
            rt.metrics.loop_lag.observe(lag)
            threshold_ms = rt.settings.config.gateway.watchdog.threshold_ms  # hot
            if threshold_ms and lag * 1000 >= threshold_ms:
                rt.metrics.loop_blocked.inc()
                who = sampler.sample
                log.warning(
                    "event loop blocked for %d ms (threshold %d ms); slowest task: %s",
                    lag * 1000,
                    threshold_ms,
                    who or "unknown (not sampled)",
                    extra={"lagMs": round(lag * 1000), "task": who.task if who else None},
                )
            sampler.sample = None
    finally:
        sampler.stopping.set()
        sampler.join(timeout=1)
