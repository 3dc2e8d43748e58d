"""``gateway --force``: free the port (and this config's lock) from a gateway of ours.

Only a *verified* gateway is ever signalled: the port's listener must be our process by its
command line, or be the live holder of this config's lock. Anything else is named and left
alone (FAILURE-MODES 2: never kill an unrelated server).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import trio

from .errors import PortInUseError, StartupError
from .lock import holder_alive, probe, read_lock
from .ports import (
    PortListener,
    command_line,
    describe,
    looks_like_gateway,
    pid_alive,
    port_listeners,
)

log = logging.getLogger("gateway")


class NotOursError(PortInUseError):
    """The port is held by something that is not a gateway of ours: the same situation as
    a start without ``--force`` (exit 75, worth a retry once it is gone), never a kill."""


TERM_GRACE_S = 5.0
KILL_GRACE_S = 2.0
POLL_S = 0.05


def targets(port: int, lock_file: Path) -> list[PortListener]:
    """The gateways to stop, or a StartupError naming a holder we must not touch."""
    me = os.getpid()
    locked = read_lock(lock_file) if probe(lock_file) == "held" else None
    lock_pid = locked.pid if locked is not None and holder_alive(locked) else None
    found: dict[int, PortListener] = {}
    for holder in (port_listeners(port) or []) if port else []:
        if holder.pid is None:
            raise NotOursError(f"port {port} is held by a process we cannot see; not stopping it")
        if holder.pid == me:
            continue
        if not (looks_like_gateway(holder.command) or holder.pid == lock_pid):
            raise NotOursError(
                f"port {port} is held by {describe(holder)}, which is not a smart-agent-neo "
                "gateway; not stopping it"
            )
        found[holder.pid] = holder
    if lock_pid is not None and lock_pid != me and lock_pid not in found:
        # the same config served on another port
        found[lock_pid] = PortListener("", lock_pid, command_line(Path("/proc"), lock_pid))
    return list(found.values())


async def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit: a pidfd becomes readable when it does (Linux >= 5.3)."""
    with trio.move_on_after(timeout):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        except (OSError, AttributeError):  # no pidfd here: poll
            while pid_alive(pid):  # noqa: ASYNC110
                await trio.sleep(POLL_S)
            return True
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            os.close(fd)
        return True
    return False


async def stop_gateways(port: int, lock_file: Path) -> list[str]:
    """Stop every verified gateway holding ``port`` or this config's lock; report what we did."""
    found = targets(port, lock_file)
    if not found:
        return [f"force: no gateway on port {port}"]
    report = []
    for holder in found:
        assert holder.pid is not None
        try:
            os.kill(holder.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        if not await _wait_gone(holder.pid, TERM_GRACE_S):
            report.append(f"force: pid {holder.pid} ignored SIGTERM; escalating to SIGKILL")
            try:
                os.kill(holder.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not await _wait_gone(holder.pid, KILL_GRACE_S):
                raise StartupError(f"failed to stop {describe(holder)}")
        report.append(f"force: stopped {describe(holder)} on port {port}")
    return report
