"""One account's outbox worker: sends that account's records, chat by chat, in order
(CHANNELS.md 6.3, 6.4).

    AccountWorker.run                        in the transport's work nursery, while running
    └── lane per chat with a due record      its records one after another (FIFO), one part
                                             in flight; at most 4 chats send at once

Each part goes ``pending -> sending`` (committed) -> HTTP call -> ``sent`` with the
platform's id (committed), so the only window in which a crash leaves us unsure is the call
itself; a part found ``sending`` by the next run is ambiguous and ``outbox.ambiguous``
decides (``policy.found_sending``). A stop or restart of the account cancels the lanes, but
a call already in flight gets :data:`IN_FLIGHT_GRACE_S` to finish and be committed, so a
stop does not turn a normal send into an ambiguous one. Records that are not due wait;
the loop sleeps until the earliest is, or until ``wake`` (a new record, a status webhook).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import attrs
import trio

from ..slot import AccountSlot
from . import store
from .model import Part, Record
from .pacing import Pacer
from .policy import SendFailure, after_failure, expired, found_sending

if TYPE_CHECKING:
    from ..sending import Sender
    from .service import Outbox

log = logging.getLogger("gateway.outbox")

PARALLEL_CHATS = 4
IN_FLIGHT_GRACE_S = 4.0  # < the 5 s a stop waits for the account's run to end
SEND_TIMEOUT_S = 30.0
T = TypeVar("T")


async def finish_in_flight(fn: Callable[[], Awaitable[T]], grace_s: float) -> T | None:
    """``await fn()`` shielded from cancellation -- but once the caller is cancelled, for at
    most ``grace_s`` more. ``None`` if the grace ran out first."""
    shield = trio.CancelScope(shield=True)
    box: list[T] = []

    async def call(done: trio.CancelScope) -> None:
        with shield:
            box.append(await fn())
        done.cancel()

    async def watch() -> None:
        try:
            await trio.sleep_forever()
        finally:  # the caller was cancelled (or the call is done): the call gets its grace
            shield.deadline = min(shield.deadline, trio.current_time() + grace_s)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, nursery.cancel_scope)
        nursery.start_soon(watch)
    return box[0] if box else None


class AccountWorker:
    def __init__(self, outbox: Outbox, slot: AccountSlot, sender: Sender) -> None:
        self.outbox = outbox
        self.slot = slot
        self.sender = sender
        self.channel, self.account_id = slot.channel, slot.account_id
        self.pacer = Pacer(sender.limits)
        self.parallel = trio.CapacityLimiter(PARALLEL_CHATS)
        self.busy: set[str] = set()
        self._ambiguous: dict[tuple[str, int], str] = {}  # why a part is in doubt
        self._wake = trio.Event()
        self.idle = trio.Event()

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.account_id)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled (the account's run ends)."""
        outbox = self.outbox
        outbox.workers[self.key] = self
        try:
            db = await outbox.database()
            async with trio.open_nursery() as lanes:
                while True:
                    self._wake = trio.Event()
                    heads = await db.run(lambda c: store.heads(c, self.channel, self.account_id))
                    now = self.outbox.now_ms()
                    soonest: int | None = None
                    for chat, due in heads:
                        if chat in self.busy:
                            continue
                        if due <= now:
                            self.busy.add(chat)
                            lanes.start_soon(self._lane, chat, name=f"outbox lane {chat}")
                        else:
                            soonest = due if soonest is None else min(soonest, due)
                    if not self.busy:
                        self.idle.set()  # nothing due now (a retry later is not work now)
                    elif self.idle.is_set():
                        self.idle = trio.Event()
                    with trio.move_on_after(
                        (soonest - now) / 1000 if soonest is not None else float("inf")
                    ):
                        await self._wake.wait()
        finally:
            if outbox.workers.get(self.key) is self:
                del outbox.workers[self.key]
            self.idle.set()

    async def _lane(self, chat: str) -> None:
        db = await self.outbox.database()
        try:
            while True:
                record = await db.run(lambda c: store.head_of(c, chat))
                if record is None or record.next_attempt_at > self.outbox.now_ms():
                    return
                if not await self._deliver(record):
                    return  # a retry is scheduled: the loop picks the chat up when due
        finally:
            self.busy.discard(chat)
            self.wake()

    # -- one record ------------------------------------------------------------------------

    async def _deliver(self, record: Record) -> bool:
        """Send the record's unsent parts in order; ``True`` once it is final."""
        outbox = self.outbox
        settings = outbox.settings()
        if expired(record, self.outbox.now_ms(), settings.max_age_ms):
            await outbox.expire(record)
            return True
        i = 0
        while i < len(record.parts):
            part = record.parts[i]
            if part.state == "sent":
                i += 1
                continue
            if part.state == "sending":
                settled = await self._found_sending(record, part)
                if settled is None:
                    return True  # given up (record final)
                record = await outbox.reload(record)
                if settled.state == "sent":
                    i += 1
                    continue  # the platform settled it: never resent
                part = settled
            await self._pace(record)
            async with self.parallel:
                result = await finish_in_flight(
                    partial(self._attempt, record, part), IN_FLIGHT_GRACE_S
                )
            if result is None:
                return False  # a stop cut the call off: the part stays `sending`
            (failure,) = result
            if failure is None:
                i += 1
                continue
            if failure.kind == "ambiguous" and self.sender.ambiguous_grace_ms > 0:
                # still `sending` in the database: a status webhook may yet settle it
                self._ambiguous[(record.id, part.idx)] = failure.message
                record = await outbox.reload(record)
                continue
            # committed even when a stop is under way: a failure we saw is not ambiguous
            with trio.CancelScope(shield=True):
                return await self._failed(record, part, failure)
        return True

    async def _pace(self, record: Record) -> None:
        group = self.sender.is_group(record.target.to)
        while True:
            delay = self.pacer.delay(record.chat_key, group, trio.current_time())
            if delay <= 0:
                break
            await trio.sleep(delay)
        self.pacer.sent(record.chat_key, group, trio.current_time())

    async def _attempt(self, record: Record, part: Part) -> tuple[SendFailure | None]:
        """One HTTP call between two commits: ``(None,)`` once the part is confirmed."""
        from ..sending import SendError

        outbox = self.outbox
        db = await outbox.database()
        now = self.outbox.now_ms()
        await db.transaction(lambda c: store.part_sending(c, record.id, part.idx, now))
        try:
            with trio.fail_after(SEND_TIMEOUT_S + 5):
                message_id = await self.sender.send_part(record, part)
        except SendError as exc:
            return (exc.failure,)
        except trio.TooSlowError:
            return (SendFailure("ambiguous", f"no answer within {SEND_TIMEOUT_S:g} s"),)
        done = self.outbox.now_ms()
        completed = await db.transaction(
            lambda c: store.part_sent(c, record.id, part.idx, message_id, done)
        )
        self.slot.last_outbound_at = done
        outbox.part_sent(record, attrs.evolve(part, platform_message_id=message_id), completed)
        return (None,)

    async def _failed(self, record: Record, part: Part, failure: SendFailure) -> bool:
        outbox = self.outbox
        settings = outbox.settings()
        record = await outbox.reload(record)
        part = next(p for p in record.parts if p.idx == part.idx)
        if part.state != "sending":
            return False  # a status webhook settled it meanwhile: look at the record again
        now = self.outbox.now_ms()
        outcome = after_failure(
            record,
            part,
            failure,
            policy=settings.ambiguous,
            now_ms=now,
            max_age_ms=settings.max_age_ms,
            uniform=outbox.uniform,
        )
        if not await outbox.record_failure(record, part, failure, outcome):
            return False
        if failure.kind == "auth":
            self.slot.linked = False
            self.slot.manager.changed()
            on_auth = getattr(self.sender, "auth_failed", None)
            if on_auth is not None:
                on_auth(failure.message)  # the account's run ends as `failed`
        return outcome.terminal

    async def _found_sending(self, record: Record, part: Part) -> Part | None:
        """A part left ``sending`` by a run that died mid-call: ambiguous."""
        outbox = self.outbox
        settings = outbox.settings()
        since = part.sending_since or record.updated_at
        while True:
            left = self.sender.ambiguous_grace_ms - (self.outbox.now_ms() - since)
            decision = found_sending(part, policy=settings.ambiguous, grace_left_ms=left)
            if decision != "wait":
                break
            # a status webhook may still prove it was sent (WhatsApp): wait it out
            with trio.move_on_after(left / 1000):
                await outbox.record_changed(record.id).wait()
            fresh = await outbox.reload(record)
            part = next(p for p in fresh.parts if p.idx == part.idx)
            if part.state != "sending":
                return part if part.state == "sent" else None
        why = self._ambiguous.pop((record.id, part.idx), "the gateway stopped during the send")
        failure = SendFailure("ambiguous", why)
        outcome = after_failure(
            record,
            part,
            failure,
            policy=settings.ambiguous,
            now_ms=self.outbox.now_ms(),
            max_age_ms=settings.max_age_ms,
            uniform=outbox.uniform,
        )
        if decision == "resend":
            # resend at once: the retry schedule is for failures we saw, not for a crash
            outcome = attrs.evolve(outcome, next_attempt_at=self.outbox.now_ms())
        if not await outbox.record_failure(record, part, failure, outcome, count_attempt=False):
            fresh = await outbox.reload(record)
            return next(p for p in fresh.parts if p.idx == part.idx)  # settled meanwhile
        if outcome.terminal:
            return None
        return attrs.evolve(part, state="pending", ambiguous=part.ambiguous + 1)
