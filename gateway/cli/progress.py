"""A spinner for the CLI's slow steps (probes, the service manager, doctor's checks).

Shown on stderr, and only when stderr is a terminal: a pipe or a log file gets nothing, and
``--json`` output on stdout is never mixed with it. It is transient -- gone when the step
ends, leaving only the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


@contextmanager
def working(console: Console, text: str) -> Iterator[None]:
    if not console.is_terminal or console.is_dumb_terminal:
        yield
        return
    with console.status(text, spinner="dots"):
        yield
