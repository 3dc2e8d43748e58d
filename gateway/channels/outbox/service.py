"""The durable outbox (CHANNELS.md 6): everything the gateway promises to deliver.

    Outbox (rt.channels.outbox)              records in channels.sqlite; no task of its own
    ├── AccountWorker, per running account   worker.py: sends that account's records
    └── prune_loop                           in the channels nursery: hourly, 7 days / 50 000

``enqueue`` writes a record and its parts in one transaction -- with the caller's own
statements when it passes them (an inbound turn marks its ledger rows ``done`` in the
same commit as its replies) -- and wakes the account's worker; it answers only after the
commit, so an acknowledged message survives a kill -9. The ``idempotencyKey`` is the
dedupe barrier: a second enqueue of a key returns the first record, for 7 days.

What waits on a record (``send`` for its first attempt, ``agent`` for its deliveries) waits
on :meth:`record_changed`, fired whenever the worker commits something for it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from ...agent import transcript
from ...agent.keys import parse_session_key
from ...protocol.frames import ErrorCode
from ..db import Database, db_path
from ..slot import wall_ms
from . import store
from .model import NewRecord, Part, Record
from .policy import AmbiguityPolicy, Outcome, SendFailure

if TYPE_CHECKING:
    import sqlite3

    from ..supervisor import ChannelManager
    from .worker import AccountWorker

log = logging.getLogger("gateway.outbox")

PRUNE_EVERY_S = 3600.0
OUTBOX_MEDIA_DIR = "outbox-media"


@attrs.frozen
class OutboxSettings:
    ambiguous: AmbiguityPolicy
    max_age_ms: int
    ambiguous_grace_ms: int
    ack_wait_ms: int


class Outbox:
    def __init__(
        self, manager: ChannelManager, uniform: Callable[[float, float], float] = random.uniform
    ) -> None:
        self.manager = manager
        self.rt = manager.rt
        self.uniform = uniform
        self.workers: dict[tuple[str, str], AccountWorker] = {}
        self._changed: dict[str, trio.Event] = {}
        self._any = trio.Event()
        self.stats: dict[tuple[str, str], store.AccountStats] = {}
        # wall-clock ms for timestamps and schedules (persisted, so not trio's clock); tests
        # on a MockClock swap in a clock that follows trio's
        self.clock: Callable[[], int] = wall_ms

    def now_ms(self) -> int:
        return self.clock()

    # -- plumbing --------------------------------------------------------------------------

    async def database(self) -> Database:
        service = self.manager.service
        assert service is not None, "the channels nursery is not running"
        await service.open_ledger()
        assert service.db is not None
        return service.db

    def settings(self) -> OutboxSettings:
        config = self.rt.settings.config
        return OutboxSettings(
            config.outbox.ambiguous,
            config.outbox.max_age_ms,
            config.outbox.ambiguous_grace_ms,
            config.send.ack_wait_ms,
        )

    def record_changed(self, record_id: str) -> trio.Event:
        """Fires the next time the worker (or a status webhook) commits for this record."""
        event = self._changed.get(record_id)
        if event is None:
            event = self._changed[record_id] = trio.Event()
        return event

    def _fire(self, record_id: str) -> None:
        event = self._changed.pop(record_id, None)
        if event is not None:
            event.set()
        self._any.set()
        self._any = trio.Event()

    def any_change(self) -> trio.Event:
        """Fires on the next commit for any record (tests and views wait on it)."""
        return self._any

    async def settled(self, keys: Sequence[str] = (), prefix: str | None = None) -> list[Record]:
        """The records of ``keys`` (and those whose key starts with ``prefix``) once each
        is final."""
        db = await self.database()

        def read(conn: sqlite3.Connection) -> list[Record]:
            found = [r for r in (store.by_key(conn, k) for k in keys) if r is not None]
            if prefix is not None:
                rows = conn.execute(
                    "SELECT idem_key FROM outbox WHERE idem_key >= ? AND idem_key < ?",
                    (prefix, prefix + "\uffff"),
                ).fetchall()
                found += [r for r in (store.by_key(conn, row[0]) for row in rows) if r is not None]
            return found

        while True:
            event = self._any
            records = await db.run(read)
            if len(records) >= len(keys) and all(r.terminal for r in records):
                return records
            await event.wait()

    def running(self, channel: str, account_id: str) -> bool:
        return (channel, account_id) in self.workers

    def wake(self, channel: str, account_id: str) -> None:
        worker = self.workers.get((channel, account_id))
        if worker is not None:
            worker.wake()

    async def refresh_stats(self) -> None:
        db = await self.database()
        self.stats = await db.run(store.stats)
        self.manager.changed()

    def account_stats(self, channel: str, account_id: str) -> dict[str, int]:
        found = self.stats.get((channel, account_id), store.AccountStats())
        return {"pending": found.pending, "failed": found.failed}

    # -- writing ---------------------------------------------------------------------------

    async def enqueue(
        self,
        records: Sequence[NewRecord],
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> list[tuple[Record, bool]]:
        """Write ``records`` (each deduped by its key) and ``also``'s statements in one
        transaction; ``(record, created)`` per record. Raises ``store.OutboxFull``.

        Cancellation: once the transaction started it completes (the database thread is
        shielded), so a caller cancelled after this returned nothing may still have
        written -- the same key later finds the record."""
        db = await self.database()
        now = self.now_ms()

        def write(conn: sqlite3.Connection) -> list[tuple[Record, bool]]:
            out = [store.insert(conn, new, now) for new in records]
            if also is not None:
                also(conn)
            return out

        written = await db.transaction(write)
        self._any.set()
        self._any = trio.Event()
        woken: set[tuple[str, str]] = set()
        for record, created in written:
            if created and (record.channel, record.account_id) not in woken:
                woken.add((record.channel, record.account_id))
                self.wake(record.channel, record.account_id)
        if any(created for _, created in written):
            await self.refresh_stats()
        return written

    async def reload(self, record: Record) -> Record:
        db = await self.database()
        fresh = await db.run(lambda c: store.get(c, record.id))
        return fresh if fresh is not None else record

    async def lookup(self, key: str) -> Record | None:
        db = await self.database()
        return await db.run(lambda c: store.by_key(c, key))

    async def wait_attempted(self, record: Record, timeout_s: float) -> Record:
        """``record`` once its first attempt is over (sent, failed, or a retry scheduled),
        or as it is after ``timeout_s``. Not at all when nobody will attempt it soon: its
        account has no running worker, or an older message to the same chat waits for a
        retry (FIFO)."""
        db = await self.database()
        now = self.now_ms()
        if record.terminal or await db.run(lambda c: store.waits_behind_a_retry(c, record, now)):
            return record
        with trio.move_on_after(timeout_s):
            while not record.terminal and record.attempts == 0:
                if not self.running(record.channel, record.account_id):
                    break
                event = self.record_changed(record.id)
                record = await self.reload(record)
                if record.terminal or record.attempts > 0:
                    break
                await event.wait()
        return await self.reload(record)

    # -- reported by the workers -----------------------------------------------------------

    def part_sent(self, record: Record, part: Part, completed: bool) -> None:
        self.rt.metrics.outbox_sends.labels(result="sent").inc()
        self.manager.changed()
        if record.mirror is not None and self.rt.nursery is not None:
            self.rt.nursery.start_soon(self._mirror, record, part, name=f"mirror {record.id}")
        if completed:
            log.debug("outbox: %s sent", record.idempotency_key)
            if self.manager.nursery is not None:
                self.manager.nursery.start_soon(self.refresh_stats)
        self._fire(record.id)

    async def record_failure(
        self,
        record: Record,
        part: Part,
        failure: SendFailure,
        outcome: Outcome,
        *,
        count_attempt: bool = True,
    ) -> bool:
        """Commit a failed attempt; ``False`` if a status webhook settled the part first."""
        db = await self.database()
        now = self.now_ms()
        applied = await db.transaction(
            lambda c: store.part_failed(
                c,
                record.id,
                part.idx,
                part_state=outcome.part_state,
                record_state=outcome.record_state,
                next_attempt_at=outcome.next_attempt_at,
                error=failure.message,
                error_class=outcome.error_class,
                error_code=outcome.error_code,
                ambiguous=outcome.ambiguous,
                count_attempt=count_attempt,
                now_ms=now,
            )
        )
        if not applied:
            self._fire(record.id)
            return False
        key = record.idempotency_key
        metrics = self.rt.metrics.outbox_sends
        if outcome.record_state == "expired":
            metrics.labels(result="failed").inc()
            log.warning("outbox: %s expired after %s: %s", key, _age(record, now), failure.message)
        elif outcome.terminal:
            metrics.labels(result="failed").inc()
            if failure.kind == "ambiguous":
                log.warning(
                    "outbox: %s ambiguous send dropped (outbox.ambiguous %s): %s",
                    key,
                    self.settings().ambiguous,
                    failure.message,
                )
            else:
                log.warning("outbox: %s failed permanently: %s", key, failure.message)
        elif outcome.ambiguous:
            metrics.labels(result="ambiguous_resent").inc()
            log.warning("outbox: %s ambiguous send resent (duplicate possible)", key)
        else:
            metrics.labels(result="retry").inc()
            log.info(
                "outbox: %s attempt failed (%s: %s); retry in %ds",
                key,
                failure.kind,
                failure.message,
                max(0, (outcome.next_attempt_at - now) // 1000),
            )
        self._fire(record.id)
        await self.refresh_stats()
        return True

    async def expire(self, record: Record) -> None:
        db = await self.database()
        now = self.now_ms()
        error = record.last_error or "not delivered in time"
        await db.transaction(
            lambda c: store.finish(
                c,
                record.id,
                "expired",
                error=f"expired after {_age(record, now)}: {error}",
                error_class=record.last_error_class,
                error_code=ErrorCode.UNAVAILABLE,
                now_ms=now,
            )
        )
        self.rt.metrics.outbox_sends.labels(result="failed").inc()
        log.warning(
            "outbox: %s expired after %s: %s", record.idempotency_key, _age(record, now), error
        )
        self._fire(record.id)
        await self.refresh_stats()

    async def apply_status(
        self,
        *,
        opaque: str | None,
        platform_id: str,
        status: str,
        error: str | None,
        error_class: str,
        error_code: str | None,
    ) -> store.StatusUpdate:
        """A platform's delivery status (WhatsApp ``statuses[]``): moves the part forward."""
        db = await self.database()
        now = self.now_ms()
        update = await db.transaction(
            lambda c: store.apply_status(
                c,
                opaque=opaque,
                platform_id=platform_id,
                status=status,
                error=error,
                error_class=error_class,
                error_code=error_code,
                now_ms=now,
            )
        )
        if update.record_id is not None:
            if update.failed:
                log.warning("outbox: part %s:%s failed: %s", update.record_id, update.idx, error)
            self._fire(update.record_id)
            if update.failed or update.completed:
                await self.refresh_stats()
        return update

    # -- mirroring (CHANNELS.md 5.5) ------------------------------------------------------

    async def _mirror(self, record: Record, part: Part) -> None:
        """Append the confirmed part to the target session's transcript, once."""
        assert record.mirror is not None
        rt = self.rt
        try:
            agent_id, rest = parse_session_key(record.mirror.session_key, record.mirror.agent_id)
            state_dir = rt.settings.paths.state_dir
            existing = await rt.agents.store.read(state_dir, agent_id, rest)
            if any(
                r.get("mirror") is True
                and r.get("idempotencyKey") == record.idempotency_key
                and r.get("part") == part.idx
                for r in existing
            ):
                return
            text = part.body
            if part.kind == "media":
                text = _media_text(part.body)
            entry = transcript.mirror_message(
                text,
                self.now_ms(),
                channel=record.channel,
                account_id=record.account_id,
                message_id=part.platform_message_id or "",
                idempotency_key=record.idempotency_key,
                part=part.idx,
            )
            await rt.agents.store.append(state_dir, agent_id, rest, [entry], self.now_ms())
            db = await self.database()
            await db.run(lambda c: store.mark_mirrored(c, record.id, part.idx))
            self._fire(record.id)
        except Exception:
            log.warning(
                "outbox: cannot mirror %s into its session", record.idempotency_key, exc_info=True
            )

    # -- upkeep ----------------------------------------------------------------------------

    async def prune(self) -> int:
        db = await self.database()
        now = self.now_ms()
        deleted = await db.transaction(lambda c: store.prune(c, now))
        media = self.rt.settings.paths.state_dir / "channels" / OUTBOX_MEDIA_DIR

        def unlink() -> None:
            for record_id in deleted:
                for path in media.glob(f"{record_id}*"):
                    path.unlink(missing_ok=True)

        if deleted:
            await trio.to_thread.run_sync(unlink)
            log.info("outbox: pruned %d final record(s)", len(deleted))
            await self.refresh_stats()
        return len(deleted)

    async def prune_loop(self) -> None:
        """Hourly: final records older than 7 days, and the oldest beyond 50 000. A gateway
        without channels never creates the database for it."""
        path = db_path(self.rt.settings.paths.state_dir)
        while True:
            try:
                exists = bool(self.manager.slots) or await trio.to_thread.run_sync(path.exists)
                if exists:
                    await self.prune()
                    await self.refresh_stats()
            except Exception as exc:
                log.warning("outbox: upkeep failed: %s", exc)
            await trio.sleep(PRUNE_EVERY_S)

    async def wait_idle(self) -> None:
        """Until every running worker has nothing due (the drain hook waits for this)."""
        for worker in list(self.workers.values()):
            await worker.idle.wait()


def _age(record: Record, now_ms: int) -> str:
    hours = (now_ms - record.created_at) / 3_600_000
    return f"{hours:.1f} h" if hours >= 1 else f"{(now_ms - record.created_at) // 60_000} min"


def _media_text(body: str) -> str:
    import json

    try:
        item = json.loads(body)
    except ValueError:
        return "<media>"
    name = item.get("filename") or item.get("url") or "file"
    caption = item.get("caption")
    return f"<media: {name}>" + (f"\n{caption}" if caption else "")
