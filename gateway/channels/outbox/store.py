"""The outbox tables (migration 2 in ``channels/db.py``): statements that run in the
database thread. Every function takes the connection; the ``Outbox`` service calls them
through ``Database.run`` / ``Database.transaction``.

Rows are never updated from two places at once: the account's worker owns the records of
its account while it sends them; ``send`` only inserts and reads; status webhooks only move
``delivery_state`` forward (and settle a part still ``sending``, which nobody else
touches while the worker waits out the grace period).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ...errors import ChannelError
from .model import (
    DELIVERY_ORDER,
    OPEN_STATES,
    TERMINAL_STATES,
    Mirror,
    NewRecord,
    Part,
    Payload,
    Record,
    Target,
)

MAX_OPEN_PER_ACCOUNT = 10_000
KEEP_MS = 7 * 24 * 3600 * 1000
MAX_TERMINAL_ROWS = 50_000


class OutboxFull(ChannelError):
    """The account has ``MAX_OPEN_PER_ACCOUNT`` records not yet final: try again later."""

    http_status = 503
    retryable: bool | None = True


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _part(r: sqlite3.Row) -> Part:
    return Part(
        record_id=r["record_id"],
        idx=int(r["idx"]),
        kind=r["kind"],
        body=r["body"],
        state=r["state"],
        attempts=int(r["attempts"]),
        ambiguous=int(r["ambiguous"]),
        platform_message_id=r["platform_message_id"],
        delivery_state=r["delivery_state"],
        sending_since=r["sending_since"],
        last_error=r["last_error"],
        mirrored=bool(r["mirrored"]),
    )


def _record(r: sqlite3.Row, parts: Sequence[Part]) -> Record:
    return Record(
        seq=int(r["seq"]),
        id=r["id"],
        idempotency_key=r["idem_key"],
        source=r["source"],
        channel=r["channel"],
        account_id=r["account_id"],
        chat_key=r["chat_key"],
        target=Target.from_wire(json.loads(r["target"])),
        payload=Payload.from_wire(json.loads(r["payload"])),
        mirror=Mirror.from_wire(json.loads(r["mirror"])) if r["mirror"] else None,
        state=r["state"],
        attempts=int(r["attempts"]),
        next_attempt_at=int(r["next_attempt_at"]),
        last_error=r["last_error"],
        last_error_class=r["last_error_class"],
        error_code=r["error_code"],
        created_at=int(r["created_at"]),
        updated_at=int(r["updated_at"]),
        sent_at=r["sent_at"],
        parts=tuple(parts),
    )


def _parts_of(conn: sqlite3.Connection, record_id: str) -> list[Part]:
    return [
        _part(r)
        for r in conn.execute(
            "SELECT * FROM outbox_parts WHERE record_id = ? ORDER BY idx", (record_id,)
        )
    ]


def get(conn: sqlite3.Connection, record_id: str) -> Record | None:
    row = conn.execute("SELECT * FROM outbox WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else _record(row, _parts_of(conn, record_id))


def by_key(conn: sqlite3.Connection, key: str) -> Record | None:
    row = conn.execute("SELECT * FROM outbox WHERE idem_key = ?", (key,)).fetchone()
    return None if row is None else _record(row, _parts_of(conn, row["id"]))


def open_count(conn: sqlite3.Connection, channel: str, account_id: str) -> int:
    marks = ",".join("?" * len(OPEN_STATES))
    row = conn.execute(
        f"SELECT COUNT(*) FROM outbox WHERE channel = ? AND account_id = ? AND state IN ({marks})",
        (channel, account_id, *OPEN_STATES),
    ).fetchone()
    return int(row[0])


def insert(conn: sqlite3.Connection, new: NewRecord, now_ms: int) -> tuple[Record, bool]:
    """The record for ``new.idempotency_key``: the existing one (``False``), or ``new``
    written now (``True``). Raises :class:`OutboxFull` past the per-account bound."""
    existing = by_key(conn, new.idempotency_key)
    if existing is not None:
        return existing, False
    if open_count(conn, new.channel, new.account_id) >= MAX_OPEN_PER_ACCOUNT:
        raise OutboxFull(f"{new.channel}:{new.account_id}")
    record_id = new.record_id or str(uuid.uuid4())
    conn.execute(
        "INSERT INTO outbox (id, idem_key, source, channel, account_id, chat_key, target,"
        " payload, mirror, state, attempts, next_attempt_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (
            record_id,
            new.idempotency_key,
            new.source,
            new.channel,
            new.account_id,
            new.chat_key,
            _json(new.target.wire()),
            _json(new.payload.wire()),
            _json(new.mirror.wire()) if new.mirror is not None else None,
            now_ms,
            now_ms,
            now_ms,
        ),
    )
    conn.executemany(
        "INSERT INTO outbox_parts (record_id, idx, kind, body, state) VALUES (?, ?, ?, ?, 'pending')",
        [(record_id, i, p.kind, p.body) for i, p in enumerate(new.parts)],
    )
    record = get(conn, record_id)
    assert record is not None
    return record, True


def heads(conn: sqlite3.Connection, channel: str, account_id: str) -> list[tuple[str, int]]:
    """Per chat of the account: ``(chat_key, next_attempt_at)`` of its oldest open record
    (FIFO: later records of a chat wait for it)."""
    marks = ",".join("?" * len(OPEN_STATES))
    rows = conn.execute(
        f"SELECT chat_key, next_attempt_at, MIN(seq) FROM outbox WHERE channel = ? AND"
        f" account_id = ? AND state IN ({marks}) GROUP BY chat_key",
        (channel, account_id, *OPEN_STATES),
    ).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def head_of(conn: sqlite3.Connection, chat: str) -> Record | None:
    marks = ",".join("?" * len(OPEN_STATES))
    row = conn.execute(
        f"SELECT * FROM outbox WHERE chat_key = ? AND state IN ({marks}) ORDER BY seq LIMIT 1",
        (chat, *OPEN_STATES),
    ).fetchone()
    return None if row is None else _record(row, _parts_of(conn, row["id"]))


def waits_behind_a_retry(conn: sqlite3.Connection, record: Record, now_ms: int) -> bool:
    """An older open record of the same chat is waiting for a later retry: this one will
    not be attempted before that (FIFO)."""
    marks = ",".join("?" * len(OPEN_STATES))
    row = conn.execute(
        f"SELECT 1 FROM outbox WHERE chat_key = ? AND seq < ? AND state IN ({marks})"
        " AND next_attempt_at > ? LIMIT 1",
        (record.chat_key, record.seq, *OPEN_STATES, now_ms),
    ).fetchone()
    return row is not None


def part_sending(conn: sqlite3.Connection, record_id: str, idx: int, now_ms: int) -> None:
    """Before the HTTP call: from here until :func:`part_sent` the part is ambiguous."""
    conn.execute(
        "UPDATE outbox_parts SET state = 'sending', attempts = attempts + 1, sending_since = ?"
        " WHERE record_id = ? AND idx = ?",
        (now_ms, record_id, idx),
    )
    conn.execute(
        "UPDATE outbox SET state = 'sending', updated_at = ? WHERE id = ?", (now_ms, record_id)
    )


def part_sent(
    conn: sqlite3.Connection, record_id: str, idx: int, message_id: str, now_ms: int
) -> bool:
    """The platform confirmed the part; ``True`` when that completed the record."""
    conn.execute(
        "UPDATE outbox_parts SET state = 'sent', platform_message_id = ?, last_error = NULL,"
        " delivery_state = COALESCE(delivery_state, 'sent') WHERE record_id = ? AND idx = ?",
        (message_id, record_id, idx),
    )
    left = conn.execute(
        "SELECT COUNT(*) FROM outbox_parts WHERE record_id = ? AND state != 'sent'",
        (record_id,),
    ).fetchone()[0]
    if left:
        conn.execute(
            "UPDATE outbox SET updated_at = ? WHERE id = ?",
            (now_ms, record_id),
        )
        return False
    conn.execute(
        "UPDATE outbox SET state = 'sent', sent_at = ?, updated_at = ?, last_error = NULL,"
        " error_code = NULL WHERE id = ?",
        (now_ms, now_ms, record_id),
    )
    return True


def part_failed(
    conn: sqlite3.Connection,
    record_id: str,
    idx: int,
    *,
    part_state: str,
    record_state: str,
    next_attempt_at: int,
    error: str,
    error_class: str,
    error_code: str | None,
    ambiguous: bool,
    count_attempt: bool,
    now_ms: int,
) -> bool:
    """Record a failed attempt: retry later (part back to pending) or give up. ``False``
    (nothing written) when the part is no longer ``sending``: a status webhook proved it
    arrived in the meantime."""
    cursor = conn.execute(
        "UPDATE outbox_parts SET state = ?, last_error = ?, sending_since = NULL,"
        " ambiguous = ambiguous + ? WHERE record_id = ? AND idx = ? AND state = 'sending'",
        (part_state, error, 1 if ambiguous and part_state == "pending" else 0, record_id, idx),
    )
    if cursor.rowcount == 0:
        return False
    if record_state in TERMINAL_STATES:
        conn.execute(
            "UPDATE outbox_parts SET state = 'cancelled' WHERE record_id = ?"
            " AND state IN ('pending', 'sending')",
            (record_id,),
        )
    conn.execute(
        "UPDATE outbox SET state = ?, attempts = attempts + ?, next_attempt_at = ?,"
        " last_error = ?, last_error_class = ?, error_code = ?, updated_at = ? WHERE id = ?",
        (
            record_state,
            1 if count_attempt else 0,
            next_attempt_at,
            error,
            error_class,
            error_code,
            now_ms,
            record_id,
        ),
    )
    return True


def finish(
    conn: sqlite3.Connection,
    record_id: str,
    state: str,
    *,
    error: str | None,
    error_class: str | None,
    error_code: str | None,
    now_ms: int,
) -> None:
    """End a record without another attempt (expired, cancelled)."""
    conn.execute(
        "UPDATE outbox_parts SET state = 'cancelled' WHERE record_id = ?"
        " AND state IN ('pending', 'sending')",
        (record_id,),
    )
    conn.execute(
        "UPDATE outbox SET state = ?, last_error = ?, last_error_class = ?, error_code = ?,"
        " updated_at = ? WHERE id = ?",
        (state, error, error_class, error_code, now_ms, record_id),
    )


def mark_mirrored(conn: sqlite3.Connection, record_id: str, idx: int) -> None:
    conn.execute(
        "UPDATE outbox_parts SET mirrored = 1 WHERE record_id = ? AND idx = ?", (record_id, idx)
    )


@attrs.frozen
class StatusUpdate:
    """What a status webhook did to a part (``None`` fields: nothing found / no change)."""

    record_id: str | None
    idx: int | None
    settled: bool = False  # a part still `sending` was proved sent
    failed: bool = False
    completed: bool = False  # that settled the whole record


def apply_status(
    conn: sqlite3.Connection,
    *,
    opaque: str | None,
    platform_id: str,
    status: str,
    error: str | None,
    error_class: str,
    error_code: str | None,
    now_ms: int,
) -> StatusUpdate:
    """A delivery status from the platform (WhatsApp ``statuses[]``, CHANNELS.md 4.5).

    The part is found by our opaque ``<recordId>:<idx>``, else by the platform's id. States
    only move forward (``sent < delivered < read``); ``failed`` fails the part and the
    record (``failed`` or ``partial_failed``). Any status for a part still ``sending``
    proves the platform took it: it becomes ``sent`` and is never resent."""
    row = None
    if opaque and ":" in opaque:
        record_id, _, idx_text = opaque.rpartition(":")
        if idx_text.isdigit():
            row = conn.execute(
                "SELECT * FROM outbox_parts WHERE record_id = ? AND idx = ?",
                (record_id, int(idx_text)),
            ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT * FROM outbox_parts WHERE platform_message_id = ?", (platform_id,)
        ).fetchone()
    if row is None:
        return StatusUpdate(None, None)
    part = _part(row)
    settled = completed = False
    if part.state in ("sending", "pending") and status != "failed":
        completed = part_sent(conn, part.record_id, part.idx, platform_id, now_ms)
        settled = True
    if status == "failed":
        record = conn.execute("SELECT * FROM outbox WHERE id = ?", (part.record_id,)).fetchone()
        earlier = conn.execute(
            "SELECT COUNT(*) FROM outbox_parts WHERE record_id = ? AND idx != ? AND state = 'sent'",
            (part.record_id, part.idx),
        ).fetchone()[0]
        conn.execute(
            "UPDATE outbox_parts SET state = 'failed', delivery_state = 'failed',"
            " platform_message_id = COALESCE(platform_message_id, ?), last_error = ?,"
            " sending_since = NULL WHERE record_id = ? AND idx = ?",
            (platform_id, error, part.record_id, part.idx),
        )
        if record is not None and record["state"] not in ("expired", "cancelled"):
            conn.execute(
                "UPDATE outbox_parts SET state = 'cancelled' WHERE record_id = ?"
                " AND state IN ('pending', 'sending')",
                (part.record_id,),
            )
            conn.execute(
                "UPDATE outbox SET state = ?, last_error = ?, last_error_class = ?,"
                " error_code = ?, updated_at = ? WHERE id = ?",
                (
                    "partial_failed" if earlier else "failed",
                    error,
                    error_class,
                    error_code,
                    now_ms,
                    part.record_id,
                ),
            )
        return StatusUpdate(part.record_id, part.idx, failed=True)
    before = DELIVERY_ORDER.get(part.delivery_state or "", 0)
    if DELIVERY_ORDER.get(status, 0) > before:
        conn.execute(
            "UPDATE outbox_parts SET delivery_state = ? WHERE record_id = ? AND idx = ?",
            (status, part.record_id, part.idx),
        )
    return StatusUpdate(part.record_id, part.idx, settled=settled, completed=completed)


@attrs.frozen
class AccountStats:
    pending: int = 0
    failed: int = 0
    oldest_pending_at: int | None = None


def stats(conn: sqlite3.Connection) -> dict[tuple[str, str], AccountStats]:
    """Open and failed records per account (``outbox{pending, failed}`` in snapshots)."""
    out: dict[tuple[str, str], AccountStats] = {}
    for r in conn.execute(
        "SELECT channel, account_id, state, COUNT(*), MIN(created_at) FROM outbox"
        " WHERE state IN ('pending', 'sending', 'failed', 'partial_failed', 'expired')"
        " GROUP BY channel, account_id, state"
    ):
        key = (r[0], r[1])
        cur = out.get(key, AccountStats())
        if r[2] in OPEN_STATES:
            oldest = (
                int(r[4])
                if cur.oldest_pending_at is None
                else min(cur.oldest_pending_at, int(r[4]))
            )
            cur = attrs.evolve(cur, pending=cur.pending + int(r[3]), oldest_pending_at=oldest)
        else:
            cur = attrs.evolve(cur, failed=cur.failed + int(r[3]))
        out[key] = cur
    return out


def open_records(conn: sqlite3.Connection, ids: Iterable[str]) -> list[Record]:
    out = []
    for record_id in ids:
        record = get(conn, record_id)
        if record is not None:
            out.append(record)
    return out


def prune(
    conn: sqlite3.Connection,
    now_ms: int,
    keep_ms: int = KEEP_MS,
    max_rows: int = MAX_TERMINAL_ROWS,
) -> list[str]:
    """Delete final records older than ``keep_ms``, and the oldest beyond ``max_rows``;
    returns the deleted ids (their media files go too)."""
    marks = ",".join("?" * len(TERMINAL_STATES))
    old = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM outbox WHERE state IN ({marks}) AND updated_at < ?",
            (*TERMINAL_STATES, now_ms - keep_ms),
        )
    ]
    total = conn.execute(
        f"SELECT COUNT(*) FROM outbox WHERE state IN ({marks})", TERMINAL_STATES
    ).fetchone()[0]
    extra = int(total) - len(old) - max_rows
    if extra > 0:
        old += [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM outbox WHERE state IN ({marks}) AND updated_at >= ?"
                " ORDER BY updated_at LIMIT ?",
                (*TERMINAL_STATES, now_ms - keep_ms, extra),
            )
        ]
    for start in range(0, len(old), 500):
        chunk = old[start : start + 500]
        ids = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM outbox_parts WHERE record_id IN ({ids})", chunk)
        conn.execute(f"DELETE FROM outbox WHERE id IN ({ids})", chunk)
    return old
