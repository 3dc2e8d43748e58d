"""The CLI's terminals: output that can never take a command (or the gateway) down.

A reader that goes away (``gateway ... | head -2``, a closed terminal, a supervisor that
closed our stderr) makes the next write fail with ``EPIPE``/``EIO``. Rich's answer is
``SystemExit(1)`` from inside ``print`` -- raised in the gateway's banner or in a log call,
that stops a healthy gateway with a 55-line traceback. Here the console goes quiet instead:
the rest of its output is dropped and the process carries on (the file log still has
everything).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from rich.console import Console


class SafeConsole(Console):
    """A Rich console whose failed writes silence it rather than raise."""

    lost: bool = False

    def _check_buffer(self) -> None:
        try:
            super()._check_buffer()
        except (OSError, ValueError):  # EIO, ENOSPC, a closed file object
            self.on_broken_pipe()

    def on_broken_pipe(self) -> None:
        del self._buffer[:]
        self.quiet = True
        self.lost = True
        # The interpreter flushes sys.stdout/sys.stderr at exit; point a dead standard
        # stream's descriptor at /dev/null so that flush does not fail (and print) again.
        for stream in (sys.stdout, sys.stderr):
            if stream is not None and self.file is stream:
                _detach(stream)


def _detach(stream: Any) -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def consoles(no_color: bool) -> tuple[SafeConsole, SafeConsole]:
    """(stdout, stderr) for one command."""
    out = SafeConsole(no_color=no_color, highlight=False, soft_wrap=True)
    err = SafeConsole(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)
    return out, err
