"""``$STATE/channels/channels.sqlite``: the channels' durable state (CHANNELS.md 6.1).

One database per state dir, one connection, one writer: every statement runs in a worker
thread (``trio.to_thread.run_sync``) under a ``CapacityLimiter(1)``, so calls are serialized
and the trio thread never blocks on disk. WAL with ``synchronous=FULL``: a committed
transaction survives a kill -9 or a power cut. The file is created 0600 (it holds raw
inbound messages).

Schema versions live in ``PRAGMA user_version``; :data:`MIGRATIONS` is the ordered list of
steps, each applied once in its own transaction. A later subsystem (the outbox) adds its
tables by appending a step -- never by editing an applied one.

Use::

    db = await Database.open(state_dir)
    rows = await db.run(lambda conn: conn.execute("SELECT ...").fetchall())
    await db.transaction(lambda conn: ...)   # BEGIN IMMEDIATE ... COMMIT (or ROLLBACK)
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

T = TypeVar("T")

DB_DIR = "channels"
DB_NAME = "channels.sqlite"

# (version, statements): append only.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE inbound (
            key         TEXT PRIMARY KEY,
            channel     TEXT NOT NULL,
            account_id  TEXT NOT NULL,
            chat_id     TEXT,
            received_at INTEGER NOT NULL,
            state       TEXT NOT NULL,      -- accepted | dispatched | done | dropped
            reason      TEXT,
            raw         TEXT                -- cleared once done; rowid = arrival order
        );
        CREATE INDEX inbound_open ON inbound (channel, account_id, state);
        CREATE INDEX inbound_age ON inbound (received_at);
        CREATE TABLE offsets (
            channel        TEXT NOT NULL,
            account_id     TEXT NOT NULL,
            last_update_id INTEGER NOT NULL,
            bot_id         TEXT,
            saved_at       INTEGER NOT NULL,
            PRIMARY KEY (channel, account_id)
        );
        CREATE TABLE session_routes (   -- lastRoute of a session (CHANNELS.md 5.2)
            session_key TEXT PRIMARY KEY,
            channel     TEXT NOT NULL,
            account_id  TEXT NOT NULL,
            to_id       TEXT NOT NULL,
            thread_id   TEXT,
            reply_to_id TEXT,
            updated_at  INTEGER NOT NULL
        );
        CREATE TABLE links (
            channel     TEXT NOT NULL,
            account_id  TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            linked_at   INTEGER NOT NULL,
            PRIMARY KEY (channel, account_id)
        );
        """,
    ),
    (
        2,
        # the durable outbox (CHANNELS.md 6.2; channels/outbox/store.py)
        """
        CREATE TABLE outbox (
            seq              INTEGER PRIMARY KEY,   -- FIFO order within a chat
            id               TEXT NOT NULL UNIQUE,
            idem_key         TEXT NOT NULL UNIQUE,  -- the dedupe barrier (7 days)
            source           TEXT NOT NULL,         -- send | agent | reply | pairing | ...
            channel          TEXT NOT NULL,
            account_id       TEXT NOT NULL,
            chat_key         TEXT NOT NULL,         -- the FIFO lane: one part in flight
            target           TEXT NOT NULL,         -- JSON {to, threadId, replyToId}
            payload          TEXT NOT NULL,         -- JSON {text, media, ...}
            mirror           TEXT,                  -- JSON {sessionKey, agentId}
            state            TEXT NOT NULL,
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  INTEGER NOT NULL,
            last_error       TEXT,
            last_error_class TEXT,
            error_code       TEXT,                  -- the wire code a `send` retry answers
            created_at       INTEGER NOT NULL,
            updated_at       INTEGER NOT NULL,
            sent_at          INTEGER
        );
        CREATE INDEX outbox_open ON outbox (channel, account_id, state, chat_key, seq);
        CREATE INDEX outbox_age ON outbox (state, updated_at);
        CREATE TABLE outbox_parts (
            record_id           TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
            idx                 INTEGER NOT NULL,
            kind                TEXT NOT NULL,      -- text | media
            body                TEXT NOT NULL,      -- the chunk, or JSON of the media item
            state               TEXT NOT NULL,      -- pending | sending | sent | failed | cancelled
            attempts            INTEGER NOT NULL DEFAULT 0,
            ambiguous           INTEGER NOT NULL DEFAULT 0,
            platform_message_id TEXT,
            delivery_state      TEXT,               -- sent | delivered | read | failed
            sending_since       INTEGER,
            last_error          TEXT,
            mirrored            INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (record_id, idx)
        );
        CREATE INDEX outbox_parts_platform ON outbox_parts (platform_message_id);
        """,
    ),
]


class DatabaseError(Exception):
    """The channel database cannot be opened or migrated; the message says where and why."""


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_DIR / DB_NAME


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # create it 0600 before sqlite does (its default mode follows the umask)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return conn


def migrate(conn: sqlite3.Connection, migrations: list[tuple[int, str]] = MIGRATIONS) -> int:
    """Apply the steps newer than ``user_version``; returns the version reached."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    newest = migrations[-1][0] if migrations else 0
    if current > newest:
        raise DatabaseError(
            f"database schema version {current} is newer than this build knows ({newest}); "
            "was it written by a newer smart-agent-neo?"
        )
    for version, script in migrations:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


def statements(script: str) -> list[str]:
    """The complete statements of ``script`` (a ``;`` inside a comment or string is kept)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


class Database:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)
        self.closed = False

    @classmethod
    async def open(cls, state_dir: Path) -> Database:
        path = db_path(state_dir)

        def setup() -> sqlite3.Connection:
            try:
                conn = _connect(path)
                migrate(conn)
            except sqlite3.Error as exc:
                raise DatabaseError(f"cannot open {path}: {exc}") from None
            return conn

        return cls(path, await trio.to_thread.run_sync(setup))

    @classmethod
    def open_sync(cls, state_dir: Path) -> Database:
        """For the CLI and tests outside trio (``pairing list`` with the gateway down...)."""
        path = db_path(state_dir)
        conn = _connect(path)
        migrate(conn)
        return cls(path, conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in the database thread, serialized with every other call.

        Cancellation: the call is shielded once started (abandoning a thread mid-commit
        would leave the limiter held by work nobody waits for); waiting for the limiter is
        cancellable.
        """
        if self.closed:
            raise DatabaseError(f"{self.path} is closed")
        async with self._limiter:
            with trio.CancelScope(shield=True):
                result = await trio.to_thread.run_sync(fn, self._conn)
        return result

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` inside ``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back if it raises."""

        def wrapped(conn: sqlite3.Connection) -> T:
            return run_in_transaction(conn, fn)

        return await self.run(wrapped)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._conn)

    def transaction_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return run_in_transaction(self._conn, fn)

    async def close(self) -> None:
        if self.closed:
            return
        async with self._limiter:
            self.closed = True
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._conn.close)

    def close_sync(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.close()


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
