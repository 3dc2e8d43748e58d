"""Find the line that explains why a supervised gateway is not listening (pure).

``gateway run`` prints every refused start as ``Gateway failed to start: <reason>``; the
other patterns are the start-up signatures of OPERATIONS.md section I, for logs written by
other code paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ERROR_LINE = re.compile(
    r"gateway failed to start"
    r"|refusing to bind gateway"
    r"|gateway auth mode"
    r"|gateway start blocked"
    r"|missing config\."
    r"|invalid config at"
    r"|failed to bind gateway socket"
    r"|another gateway instance is already listening"
    r"|gateway already running"
    r"|tailscale .* requires",
    re.IGNORECASE,
)


def last_error_line(lines: Iterable[str]) -> str | None:
    found = None
    for line in lines:
        if ERROR_LINE.search(line):
            found = line.strip()
    return found
