"""The file sink: appends JSON lines to the day's file, rotates, prunes, survives a full disk.

This is the one file the gateway writes without ``fsutil.write_atomic``: a log is
append-only by nature (a temp-file-and-rename per line would be absurd), and a torn last
line is the worst a crash can leave. Each line is one ``os.write`` on an ``O_APPEND``
descriptor, unbuffered, so ``logs.tail`` sees it at once; there is no fsync per line.

Writes happen on the logging call's thread (the trio thread, mostly): a line is a few hundred
bytes into the page cache. A write that fails -- ENOSPC, EDQUOT, EIO, a vanished directory --
never raises into the gateway: the sink reports it once on the console, drops lines, and
tries again every ``RETRY_AFTER`` seconds; when it can write again it first records how many
lines were lost (FAILURE-MODES.md item 27).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

from .entry import Entry, to_json_line
from .files import LogTarget, archive_shifts, plan_prune

RETRY_AFTER = 5.0  # seconds between attempts while the file cannot be written
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class FileSink:
    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self.target: LogTarget | None = None
        self.max_bytes = 10 * 1024 * 1024
        self.max_files = 10
        self.path: Path | None = None
        self._fd: int | None = None
        self._day: date | None = None
        self._size = 0
        self._failed_at: float | None = None
        self._torn = False  # a failed write may have left half a line: end it before the next
        self.dropped = 0  # lines lost in the current failure episode
        self.dropped_total = 0
        self.write_errors = 0

    def configure(self, target: LogTarget, max_bytes: int, max_files: int) -> None:
        if target != self.target:
            self._close()
            self.target = target
        self.max_bytes = max_bytes
        self.max_files = max_files

    def write(self, line: str, ts: float, mono: float) -> None:
        """Append one line stamped ``ts`` (wall clock); ``mono`` paces retries after a failure."""
        if self.target is None:
            return
        if self._failed_at is not None and mono - self._failed_at < RETRY_AFTER:
            self.dropped += 1
            self.dropped_total += 1
            return
        data = line.encode("utf-8", "replace")  # a lone surrogate from anywhere: "?"
        try:
            self._open_for(date.fromtimestamp(ts))
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                self._rotate()
            if self._failed_at is not None:
                self._recovered(ts)
            self._append(data)
        except OSError as exc:
            self._failed(exc, mono)

    def close(self) -> None:
        self._close()

    # -- internals ---------------------------------------------------------------------------

    def _open_for(self, day: date) -> None:
        assert self.target is not None
        if self._fd is not None and day == self._day:
            return
        self._close()
        self.target.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.target.dated(day)
        self._fd = os.open(path, _FLAGS, 0o600)
        self.path, self._day = path, day
        self._size = os.fstat(self._fd).st_size
        self._prune()

    def _rotate(self) -> None:
        assert self.target is not None
        assert self._day is not None
        self._close()
        directory = self.target.directory
        for src, dst in archive_shifts(self.target, self._day, os.listdir(directory)):
            os.replace(directory / src, directory / dst)
        self._open_for(self._day)

    def _prune(self) -> None:
        assert self.target is not None
        directory = self.target.directory
        for name in plan_prune(self.target, os.listdir(directory), self.max_files):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        if self._torn:
            data = b"\n" + data
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError:
                self._torn = len(view) < len(data)
                raise
            self._size += written
            view = view[written:]
        self._torn = False

    def _failed(self, exc: OSError, mono: float) -> None:
        self.write_errors += 1
        self.dropped += 1
        self.dropped_total += 1
        first = self._failed_at is None
        self._failed_at = mono
        self._close()  # reopen on the next attempt: the file or its directory may be gone
        if first:
            self._warn(
                f"cannot write the log file {self.path or self.target}: "
                f"{exc.strerror or exc}; dropping file log lines and retrying every "
                f"{RETRY_AFTER:.0f}s (the gateway keeps running)"
            )

    def _recovered(self, ts: float) -> None:
        entry = Entry(
            ts,
            logging.WARNING,
            "gateway/logs",
            f"log file writable again; {self.dropped} line(s) were dropped",
            {"dropped": self.dropped},
        )
        self._failed_at = None
        self.dropped = 0
        self._append(to_json_line(entry).encode("utf-8", "replace"))

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
