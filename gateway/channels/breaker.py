"""The crash-loop breaker (CHANNELS.md 2.4, OPERATIONS D.5).

Each process start appends a boot to ``$STATE/boot-history.json``; a clean exit marks it
clean. When the last boots include 3 unclean ones within 5 minutes, channels do not start
by themselves: the control plane is up, the accounts stay ``stopped`` with
``stopReason: "crash-loop-breaker"`` until ``channels.start`` or 15 minutes of clean uptime
(the lift). A boot that crashes right after a lift re-trips the breaker at once, so the
worst case is one crash per 15 minutes rather than a tight loop.

:func:`decide` is pure; :class:`BootHistory` reads and writes the file (atomically).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import attrs

from ..fsutil import write_atomic

log = logging.getLogger("gateway.channels")

FILE_NAME = "boot-history.json"
WINDOW_MS = 5 * 60_000
UNCLEAN_LIMIT = 3
LIFT_AFTER_MS = 15 * 60_000
KEEP = 20


@attrs.frozen
class Boot:
    pid: int
    started_at: int
    clean: bool = False
    lifted: bool = False  # this boot lifted the breaker (after 15 min of clean uptime)


def decide(previous: list[Boot], now_ms: int) -> bool:
    """Should channel auto-start be suppressed for a boot at ``now_ms``?"""
    recent_unclean = [b for b in previous if not b.clean and now_ms - b.started_at <= WINDOW_MS]
    if len(recent_unclean) >= UNCLEAN_LIMIT:
        return True
    # probation: the boot that lifted the breaker crashed -> trip again at once
    return bool(previous) and previous[-1].lifted and not previous[-1].clean


def _load(path: Path) -> list[Boot]:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    boots = data.get("boots") if isinstance(data, dict) else None
    out = []
    for item in boots if isinstance(boots, list) else []:
        try:
            out.append(
                Boot(
                    int(item["pid"]),
                    int(item["startedAt"]),
                    bool(item.get("clean")),
                    bool(item.get("lifted")),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


class BootHistory:
    """This process's entry in the boot history."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self.boot: Boot | None = None
        self.tripped = False

    def record_boot(self, now_ms: int) -> bool:
        """Append this boot; returns whether the breaker is tripped for it."""
        previous = _load(self.path)
        self.tripped = decide(previous, now_ms)
        self.boot = Boot(os.getpid(), now_ms)
        self._write([*previous, self.boot])
        return self.tripped

    def _update(self, **changes: bool) -> None:
        if self.boot is None:
            return
        boots = _load(self.path)
        updated = attrs.evolve(self.boot, **changes)
        for i in range(len(boots) - 1, -1, -1):
            if boots[i].pid == self.boot.pid and boots[i].started_at == self.boot.started_at:
                boots[i] = updated
                break
        else:
            boots.append(updated)
        self.boot = updated
        self._write(boots)

    def mark_lifted(self) -> None:
        self.tripped = False
        self._update(lifted=True)

    def mark_clean(self) -> None:
        self._update(clean=True)

    def _write(self, boots: list[Boot]) -> None:
        data = {
            "boots": [
                {"pid": b.pid, "startedAt": b.started_at, "clean": b.clean, "lifted": b.lifted}
                for b in boots[-KEEP:]
            ]
        }
        try:
            write_atomic(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)
