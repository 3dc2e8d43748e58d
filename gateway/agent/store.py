"""Transcripts on disk: ``<state>/agents/<agentId>/sessions/<key>.jsonl``, one record a line.

Every append rewrites the file through ``fsutil.write_atomic`` (temp file, fsync, rename),
so a crash leaves the transcript as it was before or after the append, never with a torn
line. Appends to one file are serialized by a per-file lock; the file work runs in a worker
thread so a large transcript never stalls the event loop. The price is that an append costs
the size of the transcript (a run appends twice: its user message, then the rest); a
compaction or rotation policy for very long sessions is future work.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from ..fsutil import write_atomic
from ..protocol.agent import SessionRow
from . import transcript
from .keys import DEFAULT_AGENT_ID, file_stem, rest_from_stem, session_key
from .transcript import Record


def sessions_dir(state_dir: Path, agent_id: str = DEFAULT_AGENT_ID) -> Path:
    return state_dir / "agents" / agent_id / "sessions"


def transcript_path(state_dir: Path, agent_id: str, rest: str) -> Path:
    return sessions_dir(state_dir, agent_id) / f"{file_stem(rest)}.jsonl"


def _append_sync(path: Path, lines: str, header: str) -> None:
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        existing = header.encode()
    write_atomic(path, existing + lines.encode())


def _read_sync(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@attrs.frozen
class FileInfo:
    agent_id: str
    key: str
    updated_at: int
    size: int


def _scan_sync(state_dir: Path, agent_ids: list[str]) -> list[FileInfo]:
    found: list[FileInfo] = []
    for agent_id in agent_ids:
        directory = sessions_dir(state_dir, agent_id)
        try:
            paths = list(directory.glob("*.jsonl"))
        except OSError:
            continue
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            key = session_key(agent_id, rest_from_stem(path.stem))
            found.append(FileInfo(agent_id, key, int(stat.st_mtime * 1000), stat.st_size))
    found.sort(key=lambda f: f.updated_at, reverse=True)
    return found


@attrs.define
class SessionStore:
    _locks: dict[Path, trio.Lock] = attrs.field(factory=dict, init=False)

    def _lock(self, path: Path) -> trio.Lock:
        lock = self._locks.get(path)
        if lock is None:
            lock = self._locks[path] = trio.Lock()
        return lock

    async def append(
        self, state_dir: Path, agent_id: str, rest: str, records: list[Record], now_ms: int
    ) -> None:
        """Append ``records``; a new file starts with the session header.

        Cancellation: the write itself is not interruptible (it runs in a thread); a
        cancelled caller still leaves a complete file.
        """
        path = transcript_path(state_dir, agent_id, rest)
        header = transcript.encode([transcript.header(session_key(agent_id, rest), now_ms)])
        lock = self._lock(path)
        async with lock:
            await trio.to_thread.run_sync(_append_sync, path, transcript.encode(records), header)
        if not lock.locked() and not lock.statistics().tasks_waiting:
            self._locks.pop(path, None)  # keep the table as small as the set of busy files

    async def read(self, state_dir: Path, agent_id: str, rest: str) -> list[Record]:
        path = transcript_path(state_dir, agent_id, rest)
        return transcript.decode(await trio.to_thread.run_sync(_read_sync, path))

    async def list(
        self, state_dir: Path, agent_ids: list[str], now_ms: int, limit: int
    ) -> tuple[int, list[SessionRow]]:
        """``(total, newest rows up to limit)`` across ``agent_ids``."""
        files = await trio.to_thread.run_sync(_scan_sync, state_dir, agent_ids)
        rows = [
            SessionRow(f.key, f.agent_id, f.updated_at, max(0, now_ms - f.updated_at), f.size)
            for f in files[:limit]
        ]
        return len(files), rows
