"""Has anything under the canvas root changed? mtime/size snapshots, compared (blocking I/O).

Polling keeps us free of an inotify dependency and works on every filesystem; the root is a
folder of a few web files, so a walk every 250 ms is cheap. Dotfiles and ``node_modules`` are
skipped (editors' swap files, package installs).
"""

from __future__ import annotations

import os
from pathlib import Path

Snapshot = dict[str, tuple[int, int]]
IGNORED_DIRS = frozenset({"node_modules"})
MAX_ENTRIES = 20_000


def snapshot(root: Path) -> Snapshot:
    """``{relative path: (mtime_ns, size)}`` of every file; raises ``OSError`` if the root
    itself cannot be read."""
    found: Snapshot = {}
    os.stat(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed while we looked: the next snapshot sees it gone
            found[os.path.relpath(path, root)] = (st.st_mtime_ns, st.st_size)
            if len(found) >= MAX_ENTRIES:
                return found
    return found
