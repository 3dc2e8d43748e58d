"""The inbound ledger and the poll watermark (CHANNELS.md 3.2, 6.5).

Every inbound update becomes one row keyed ``tg:<acct>:<update_id>`` (``wa:...`` later),
state ``accepted -> dispatched -> done | dropped``. A batch of updates and the account's
new watermark are written in **one transaction** (:meth:`Ledger.record_batch`), and only
after its commit does the poller confirm the batch to Telegram by asking for the next
offset. So a crash before the commit loses nothing (Telegram redelivers), a crash after it
replays nothing (the rows are re-dispatched at boot; a redelivered copy is a key collision).

The key is the dedupe barrier; an in-memory LRU (2 000 keys, 5 min) answers repeats without
touching the disk. ``raw`` is cleared when a row is final; final rows go after 7 days.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import attrs

from .db import Database

State = Literal["accepted", "dispatched", "done", "dropped"]
KEEP_MS = 7 * 24 * 3600 * 1000
LRU_SIZE = 2000
LRU_TTL_S = 300.0


@attrs.frozen
class Inbound:
    key: str
    channel: str
    account_id: str
    chat_id: str | None
    received_at: int
    raw: str | None
    state: State = "accepted"
    reason: str | None = None


@attrs.frozen
class Offset:
    last_update_id: int
    bot_id: str | None
    saved_at: int


class RecentKeys:
    """Keys seen lately (LRU with a TTL); the clock is passed in."""

    def __init__(self, size: int = LRU_SIZE, ttl_s: float = LRU_TTL_S) -> None:
        self.size, self.ttl = size, ttl_s
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, key: str, now: float) -> bool:
        at = self._seen.get(key)
        if at is None or now - at > self.ttl:
            return False
        self._seen.move_to_end(key)
        return True

    def add(self, key: str, now: float) -> None:
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


# -- statements (run in the database thread) ---------------------------------------------------


def _insert(conn: sqlite3.Connection, rows: Sequence[Inbound]) -> list[str]:
    fresh = []
    for row in rows:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO inbound"
            " (key, channel, account_id, chat_id, received_at, state, reason, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.key,
                row.channel,
                row.account_id,
                row.chat_id,
                row.received_at,
                row.state,
                row.reason,
                None if row.state in ("done", "dropped") else row.raw,
            ),
        )
        if cursor.rowcount == 1:
            fresh.append(row.key)
    return fresh


def _save_offset(conn: sqlite3.Connection, channel: str, account_id: str, offset: Offset) -> None:
    conn.execute(
        "INSERT INTO offsets (channel, account_id, last_update_id, bot_id, saved_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, account_id) DO UPDATE SET"
        " last_update_id = excluded.last_update_id, bot_id = excluded.bot_id,"
        " saved_at = excluded.saved_at",
        (channel, account_id, offset.last_update_id, offset.bot_id, offset.saved_at),
    )


def _row(r: sqlite3.Row) -> Inbound:
    return Inbound(
        key=r["key"],
        channel=r["channel"],
        account_id=r["account_id"],
        chat_id=r["chat_id"],
        received_at=r["received_at"],
        raw=r["raw"],
        state=r["state"],
        reason=r["reason"],
    )


def mark_rows(
    conn: sqlite3.Connection, keys: Sequence[str], state: State, reason: str | None = None
) -> None:
    """Rows to ``state`` inside the caller's transaction (``raw`` goes once final)."""
    for key in keys:
        if state in ("done", "dropped"):
            conn.execute(
                "UPDATE inbound SET state = ?, reason = ?, raw = NULL WHERE key = ?",
                (state, reason, key),
            )
        else:
            conn.execute("UPDATE inbound SET state = ? WHERE key = ?", (state, key))


class Ledger:
    """The ledger of one channel database; methods are awaited from trio."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.recent = RecentKeys()

    async def record_batch(
        self,
        channel: str,
        account_id: str,
        rows: Sequence[Inbound],
        offset: Offset | None,
    ) -> list[str]:
        """Insert the rows not yet present and move the watermark, in one transaction.

        Returns the keys that were new (in order); the others were duplicates.
        """
        now = time.monotonic()
        candidates = [r for r in rows if not self.recent.seen(r.key, now)]

        def write(conn: sqlite3.Connection) -> list[str]:
            fresh = _insert(conn, candidates)
            if offset is not None:
                _save_offset(conn, channel, account_id, offset)
            return fresh

        fresh = await self.db.transaction(write)
        for row in rows:
            self.recent.add(row.key, now)
        return fresh

    async def load_offset(self, channel: str, account_id: str) -> Offset | None:
        def read(conn: sqlite3.Connection) -> Offset | None:
            r = conn.execute(
                "SELECT last_update_id, bot_id, saved_at FROM offsets"
                " WHERE channel = ? AND account_id = ?",
                (channel, account_id),
            ).fetchone()
            return None if r is None else Offset(int(r[0]), r[1], int(r[2]))

        return await self.db.run(read)

    async def mark(self, key: str, state: State, reason: str | None = None) -> None:
        final = state in ("done", "dropped")

        def write(conn: sqlite3.Connection) -> None:
            if final:
                conn.execute(
                    "UPDATE inbound SET state = ?, reason = ?, raw = NULL WHERE key = ?",
                    (state, reason, key),
                )
            else:
                conn.execute("UPDATE inbound SET state = ? WHERE key = ?", (state, key))

        await self.db.run(write)

    async def unfinished(self, channel: str, account_id: str) -> list[Inbound]:
        """Rows still ``accepted`` or ``dispatched``, oldest first (re-dispatched at boot)."""

        def read(conn: sqlite3.Connection) -> list[Inbound]:
            return [
                _row(r)
                for r in conn.execute(
                    "SELECT * FROM inbound WHERE channel = ? AND account_id = ?"
                    " AND state IN ('accepted', 'dispatched') ORDER BY rowid",
                    (channel, account_id),
                )
            ]

        return await self.db.run(read)

    async def get(self, key: str) -> Inbound | None:
        def read(conn: sqlite3.Connection) -> Inbound | None:
            r = conn.execute("SELECT * FROM inbound WHERE key = ?", (key,)).fetchone()
            return None if r is None else _row(r)

        return await self.db.run(read)

    async def counts(self, channel: str, account_id: str) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return {
                r[0]: int(r[1])
                for r in conn.execute(
                    "SELECT state, COUNT(*) FROM inbound WHERE channel = ? AND account_id = ?"
                    " GROUP BY state",
                    (channel, account_id),
                )
            }

        return await self.db.run(read)

    async def prune(self, now_ms: int, keep_ms: int = KEEP_MS) -> int:
        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM inbound WHERE state IN ('done', 'dropped') AND received_at < ?",
                (now_ms - keep_ms,),
            )
            return int(cursor.rowcount)

        return await self.db.run(write)
