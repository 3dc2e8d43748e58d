"""Who is listening on a TCP port, read from /proc (no lsof needed). Linux only; elsewhere
the answer is "unknown" and callers say so.

Used by ``--force`` (stop only a verified gateway of ours) and by start-up diagnostics.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import attrs

LISTEN = "0A"


@attrs.frozen
class Listener:
    pid: int | None  # None: the socket exists but its process is not visible to us
    cmdline: str

    @property
    def is_our_gateway(self) -> bool:
        """Process identity: a listener started by our console script or ``python -m gateway``
        (only listeners are ever asked, and only ``gateway run`` listens)."""
        words = self.cmdline.split()
        script = any(w.rsplit("/", 1)[-1] == "smart-agent-neo" for w in words)
        module = any(a == "-m" and b == "gateway" for a, b in itertools.pairwise(words))
        return script or module

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a process we cannot see"
        return f"{who} ({self.cmdline})" if self.cmdline else who


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def listeners(port: int) -> list[Listener]:
    """Processes with a listening socket on ``port`` (any address)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: dict[int, Listener] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                found[pid] = Listener(pid, cmdline(pid))
                break
    return list(found.values()) or [Listener(None, "")]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); it is gone for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"
