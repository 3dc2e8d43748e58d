"""Notice when the config file changes, and let the writer finish first.

Polls ``stat`` (inode, size, mtime, ctime, mode) rather than using inotify: it needs no dependency, works
on every filesystem, and survives editors that write a temp file and rename it over the
original (the inode changes, so we notice; a watch on the old inode would not). The change
time and mode are in the signature so that a ``chmod`` that makes an unreadable file readable
again is a change too: an edit saved while the file could not be read is then picked up
(issue 16). A change is
reported only after the file has stopped changing for ``debounce`` seconds, so a burst of
writes (an editor saving twice, a half-written file being completed) is read once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

POLL_INTERVAL_S = 0.2


@attrs.frozen
class Signature:
    """What tells two versions of a file apart without reading it."""

    exists: bool
    inode: int = 0
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0  # changes with chmod/chown too
    mode: int = 0


def signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return Signature(exists=False)
    return Signature(True, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


async def wait_for_change(
    path: Path,
    since: Signature,
    debounce: Callable[[], float],
    poll_interval: float = POLL_INTERVAL_S,
) -> Signature:
    """Return the file's signature once it differs from ``since`` and has settled.

    ``debounce`` is called each time, so a reload that changes ``gateway.reload.debounceMs``
    takes effect for the next change.

    Cancellation: safe at any point; nothing is read or held between polls.
    """
    current = since
    while current == since:
        await trio.sleep(poll_interval)
        current = signature(path)
    while True:
        await trio.sleep(max(debounce(), poll_interval))
        settled = signature(path)
        if settled == current:
            return settled
        current = settled
