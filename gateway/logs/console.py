"""The console sink: one terse, human line per entry, rendered with Rich.

``12:04:05 [ws] connection closed connId=1f2e code=1000 by=client`` -- time, subsystem,
message, then the fields dimmed. Info lines carry no level word; warnings and errors do, in
colour. A traceback (the ``error`` field) follows on its own lines.
"""

from __future__ import annotations

import contextlib
import json
import time

from rich.console import Console
from rich.text import Text

from ..edge import clean
from .entry import Entry, short_subsystem, to_json_line

_LEVEL_STYLE = {
    "trace": ("trace", "dim"),
    "debug": ("debug", "dim"),
    "warn": ("warn", "yellow"),
    "error": ("error", "bold red"),
    "fatal": ("fatal", "bold red"),
}
MAX_FIELD_CHARS = 120
MAX_MESSAGE_CHARS = 64 * 1024


def render(entry: Entry) -> Text:
    text = Text()
    text.append(time.strftime("%H:%M:%S", time.localtime(entry.time)), style="dim")
    label = _LEVEL_STYLE.get(entry.level)
    if label is not None:
        text.append(f" {label[0]}", style=label[1])
    text.append(f" [{short_subsystem(entry.subsystem)}]", style="cyan")
    # control characters from a client's value (an ESC in a name) never reach the terminal
    text.append(" " + clean(entry.msg, MAX_MESSAGE_CHARS, newlines=True))
    error = None
    for key, value in entry.fields.items():
        if key == "error" and isinstance(value, str):
            error = value
            continue
        text.append(f" {key}={_short(value)}", style="dim")
    if error is not None:
        text.append("\n" + clean(error, MAX_MESSAGE_CHARS, newlines=True), style="red")
    return text


def _short(value: object) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str)
    return clean(shown, MAX_FIELD_CHARS)


class ConsoleSink:
    """``style`` (``logging.consoleStyle``): ``pretty`` -- the line above, coloured on a
    terminal; ``compact`` -- the same line, never styled; ``json`` -- the file's JSON line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.style = "pretty"

    def write(self, entry: Entry) -> None:
        # a closed or broken stderr (supervisor went away) must not take the gateway down
        with contextlib.suppress(OSError, ValueError):
            if self.style == "json":
                line = to_json_line(entry).rstrip("\n")
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
                return
            text = render(entry)
            if self.style == "compact":
                text = Text(text.plain)
            self.console.print(text, soft_wrap=True, highlight=False)

    def notice(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.console.print(Text(f"[logs] {message}", style="yellow"), soft_wrap=True)
