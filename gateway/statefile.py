"""One JSON document in the state dir, read once and written atomically (0600).

The pairing stores keep their records here (``nodes/*.json``, ``devices/*.json``): a few
kilobytes written only when an operator or a device changes something, which a person can
read and repair by hand. Writes take the same path as every other file the gateway writes
(``fsutil.write_atomic``: temp file, fsync, rename) in a worker thread, one at a time and in
the order they were asked for, so a slow disk never stalls the event loop and an older
snapshot can never land after a newer one.

A file that does not parse is never overwritten: it is renamed to ``<name>.corrupt-<ms>``
(logged), and the store starts empty -- the damaged copy stays for the person to inspect. One
that cannot be read at all is left alone and not written this run. A failed write (a full
disk) is logged and the gateway carries on: degraded, not dead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs
import trio

from .fsutil import write_atomic
from .protocol.codec import dumps, from_wire, loads

T = TypeVar("T")

log = logging.getLogger("gateway.state")


@attrs.define(eq=False)
class StateFile:
    path: Path
    _lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    _asked: int = attrs.field(default=0, init=False)  # saves requested so far
    _written: int = attrs.field(default=0, init=False)  # the newest request on disk
    # why the file could not be read (not "absent"): then it is never overwritten either
    _unreadable: str | None = attrs.field(default=None, init=False)

    def load(self) -> object | None:
        """The stored JSON value; ``None`` if the file is absent, was set aside as corrupt, or
        cannot be read (logged; this run then keeps its changes in memory only)."""
        try:
            text = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # absent: nothing to protect
            return None
        except OSError as exc:
            self._unreadable = str(exc)
            log.error("cannot read %s (%s); changes stay in memory until a restart", self.path, exc)
            return None
        try:
            value: object = loads(text)
        except ValueError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time() * 1000)}")
            try:
                self.path.rename(aside)
            except OSError as moved:
                self._unreadable = f"not valid JSON, and not movable aside: {moved}"
                log.error("%s is not valid JSON and cannot be moved aside (%s)", self.path, moved)
                return None
            log.warning("%s is not valid JSON (%s); moved it to %s", self.path, exc, aside.name)
            return None
        return value

    def load_records(self, cls: type[T], key: Callable[[T], str]) -> dict[str, T]:
        """A stored ``{id: record}`` map as ``cls`` instances keyed by ``key(record)``.

        A record that no longer parses is skipped with a warning (the file keeps it until
        the next write): one bad entry must not cost the others."""
        raw = self.load()
        records: dict[str, T] = {}
        if not isinstance(raw, dict):
            return records
        for value in raw.values():
            try:
                record = from_wire(cls, value)
            except Exception as exc:
                log.warning("%s: skipping an unreadable record (%s)", self.path, exc)
                continue
            records[key(record)] = record
        return records

    async def save(self, value: object) -> bool:
        """Write ``value``; ``True`` once it is on disk.

        A write that fails (a full disk, a read-only state dir) is logged and returns
        ``False``: the gateway carries on with the change in memory, and the next save writes
        the whole document again. A file that could not be read is never overwritten.

        Cancellation: shielded -- a change made in memory always reaches the disk (a write
        takes milliseconds; the wait for an earlier one is bounded by it)."""
        if self._unreadable is not None:
            log.error("not writing %s: it could not be read (%s)", self.path, self._unreadable)
            return False
        text = dumps(value)
        self._asked += 1
        mine = self._asked
        # Shielded: the change is already made in memory and others may have seen it; a
        # cancelled caller (a stop, a closed connection) must not keep it off the disk.
        written = True
        with trio.CancelScope(shield=True):
            async with self._lock:
                if mine < self._written:
                    return True  # a newer snapshot is already on disk
                try:
                    await trio.to_thread.run_sync(self._write, text)
                    self._written = mine
                except OSError as exc:
                    log.error(
                        "could not write %s (%s); the change is kept in memory and written "
                        "with the next one",
                        self.path,
                        exc,
                    )
                    written = False
        return written

    def _write(self, text: str) -> None:
        write_atomic(self.path, text + "\n", secret=True)
