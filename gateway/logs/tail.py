"""``logs.tail``: read the end of the file log from a byte cursor (PROTOCOL.md 7.9).

``plan`` and ``split`` are pure; ``read_tail`` is the blocking driver (run it in a thread).

The cursor is a byte offset in the current file. A cursor past the end means the file was
rotated or truncated (``reset``); a gap wider than ``maxBytes`` skips ahead (``reset`` and
``truncated``). One deliberate refinement of the reference algorithm: a last line still
being written (no newline yet) is not returned, and the cursor stops before it, so a
follower never sees half a line and never loses the rest of it.
"""

from __future__ import annotations

import os
from datetime import date

import attrs

from .files import LogTarget, newest_live


@attrs.frozen
class Window:
    start: int
    reset: bool
    truncated: bool


def plan(size: int, cursor: int | None, max_bytes: int) -> Window:
    if cursor is None:
        start = max(0, size - max_bytes)
        return Window(start, reset=False, truncated=start > 0)
    if cursor > size:
        start = max(0, size - max_bytes)
        return Window(start, reset=True, truncated=start > 0)
    if size - cursor > max_bytes:
        return Window(size - max_bytes, reset=True, truncated=True)
    return Window(cursor, reset=False, truncated=False)


@attrs.frozen
class Lines:
    lines: list[str]
    end: int  # offset just after the last complete line
    cut: bool  # lines were dropped to respect the limit


def split(data: bytes, start: int, starts_mid_line: bool, limit: int) -> Lines:
    """Complete lines of ``data`` (which begins at file offset ``start``)."""
    last_newline = data.rfind(b"\n")
    if last_newline < 0:
        return Lines([], start, False)
    complete = data[: last_newline + 1]
    chunks = complete.split(b"\n")[:-1]  # the final element is the empty string after "\n"
    if starts_mid_line and chunks:
        chunks = chunks[1:]
    texts = [c.decode("utf-8", errors="replace").rstrip("\r") for c in chunks]
    texts = [t for t in texts if t]
    cut = len(texts) > limit
    return Lines(texts[-limit:] if cut else texts, start + last_newline + 1, cut)


@attrs.frozen
class TailResult:
    file: str
    cursor: int
    size: int
    lines: list[str]
    truncated: bool
    reset: bool


def read_tail(
    target: LogTarget, today: date, cursor: int | None, limit: int, max_bytes: int
) -> TailResult:
    """Raises ``OSError`` for anything but a missing log (which is an empty answer)."""
    try:
        names = os.listdir(target.directory)
    except FileNotFoundError:
        names = []
    name = newest_live(target, names, today)
    path = target.directory / name if name else target.dated(today)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return TailResult(str(path), 0, 0, [], truncated=False, reset=cursor not in (None, 0))
    with handle:
        size = os.fstat(handle.fileno()).st_size
        window = plan(size, cursor, max_bytes)
        read_from = max(0, window.start - 1)  # one byte more, to see if we start mid-line
        handle.seek(read_from)
        data = handle.read(size - read_from)
    starts_mid_line = window.start > 0 and data[:1] != b"\n"
    if window.start > 0:
        data = data[1:]
    lines = split(data, window.start, starts_mid_line, limit)
    return TailResult(
        str(path),
        lines.end,
        size,
        lines.lines,
        truncated=window.truncated or lines.cut,
        reset=window.reset,
    )
