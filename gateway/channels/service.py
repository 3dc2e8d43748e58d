"""What happens to an inbound message once it is in the ledger (CHANNELS.md 3.5, 5.2, 6.5).

    ledger row (accepted) -> dispatched -> policy -> session key -> agent run -> reply -> done
                                               \\-> dropped | pairing reply | group history

The transport hands every fresh message to :meth:`ChannelService.process` in the message's
chat lane. The run id is the ledger key, so a message that is processed again -- after a
channel restart, or at boot for rows left ``accepted``/``dispatched`` -- joins the run that
is still going (or finds its outcome in the agent's idempotency cache or its transcript)
instead of running the turn twice. A run interrupted by a stop leaves its row
``dispatched``: the next boot processes it again.

Replies go to the durable outbox (``channels/outbox/``) under ``reply:<ledgerKey>:<n>``, in
the same transaction that marks the message's ledger rows ``done``: once a turn has
answered, its reply is either still to be enqueued (the row is not ``done``: the next run
finds the answer in the transcript and enqueues it) or in the outbox -- never lost, never
sent twice by this path. The account's worker sends it, retries it, and settles a send a
crash cut off (``outbox.ambiguous``). Only the typing indicator is sent directly.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from ..agent import transcript
from ..agent.keys import session_key as make_session_key
from ..agent.service import RunRequest
from ..errors import GatewayError
from .accounts import TelegramAccountConfig
from .db import Database
from .delivery import Destination, new_record
from .ledger import Inbound, Ledger, mark_rows
from .outbox.model import Payload, Source, Target
from .pairing import PairingStore, reply_text
from .policy import Decision, dm_decision, group_decision
from .replies import suppressed
from .routing import PeerKind, Route, select_agent, session_rest
from .telegram.inbound import Message

if TYPE_CHECKING:
    from .slot import AccountSlot
    from .supervisor import ChannelManager

log = logging.getLogger("gateway.channels")
TYPING_EVERY_S = 4.0
TYPING_MAX_S = 600.0


class ReplyChannel(Protocol):
    """What a turn sends directly: the typing indicator (replies go to the outbox)."""

    async def typing(self, chat_id: str, thread_id: int | None) -> None: ...


def prior_reply(records: Sequence[transcript.Record], run_id: str) -> list[str] | None:
    """The replies of a run that already finished OK in this transcript (else ``None``)."""
    ended = any(
        r.get("type") == "run" and r.get("runId") == run_id and r.get("status") == "ok"
        for r in records
    )
    if not ended:
        return None
    return [
        str(r.get("text"))
        for r in records
        if r.get("type") == "message"
        and r.get("role") == "assistant"
        and r.get("runId") == run_id
        and r.get("text")
    ]


def envelope(msg: Message, history: Sequence[str], media_notes: Sequence[str]) -> str:
    who = msg.sender_name + (f" (@{msg.sender_username})" if msg.sender_username else "")
    label = {"telegram": "Telegram", "whatsapp": "WhatsApp"}.get(msg.channel, msg.channel)
    where = label if not msg.is_group else f"{label} group {msg.chat_id}"
    if msg.is_topic and msg.thread_id is not None:
        where += f" topic {msg.thread_id}"
    lines: list[str] = []
    if history:
        lines.append("[Chat messages since your last reply - for context]")
        lines.extend(history)
        lines.append("[Current message - respond to this]")
    body = msg.text
    if msg.reply is not None:
        sender = msg.reply.sender_name or "unknown"
        quoted = f"[Replying to {sender} id:{msg.reply.message_id}]\n{msg.reply.text}\n[/Replying]"
        body = f"{quoted}\n{body}" if body else quoted
    if media_notes:
        body = (body + "\n" if body else "") + "\n".join(media_notes)
    lines.append(f"[{where} {who} id:{msg.sender_id}] {body}")
    return "\n".join(lines)


class ChannelService:
    def __init__(self, manager: ChannelManager) -> None:
        self.manager = manager
        self.rt = manager.rt
        self.db: Database | None = None
        self.ledger: Ledger | None = None
        self._db_lock = trio.Lock()
        self._pairing: dict[str, PairingStore] = {}
        self.history: dict[tuple[str, str], deque[str]] = {}
        self.draining = False
        self.inflight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._marked = trio.Event()

    def pairing_store(self, channel: str) -> PairingStore:
        """One store per channel (its files and lock under credentials/)."""
        store = self._pairing.get(channel)
        if store is None:
            store = self._pairing[channel] = PairingStore(self.rt.settings.paths.state_dir, channel)
        return store

    @property
    def pairing(self) -> PairingStore:
        return self.pairing_store("telegram")

    def marked(self) -> None:
        """Ledger rows changed state (wakes :meth:`wait_final`)."""
        self._marked.set()
        self._marked = trio.Event()

    async def wait_final(self, key: str) -> Inbound:
        """The row once it is ``done`` or ``dropped`` (tests, and the CLI's future use)."""
        while True:
            event = self._marked
            row = await (await self.open_ledger()).get(key)
            if row is not None and row.state in ("done", "dropped"):
                return row
            await event.wait()

    async def open_ledger(self) -> Ledger:
        async with self._db_lock:
            if self.ledger is None:
                self.db = await Database.open(self.rt.settings.paths.state_dir)
                self.ledger = Ledger(self.db)
                await self.ledger.prune(self.rt.now_ms())
            return self.ledger

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()

    async def drain(self) -> None:
        """Stop taking new messages; wait for those being processed (drain budget applies)."""
        self.draining = True
        while self.inflight:
            self._idle = trio.Event()
            await self._idle.wait()

    # -- links -----------------------------------------------------------------------------------

    async def note_linked(self, slot: AccountSlot, token: str) -> None:
        """A token probed OK: ``linkedAt`` is when this token (by fingerprint) first did."""
        await self.open_ledger()
        assert self.db is not None
        fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]
        now = self.rt.now_ms()

        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT fingerprint, linked_at FROM links WHERE channel = ? AND account_id = ?",
                (slot.channel, slot.account_id),
            ).fetchone()
            if row is not None and row[0] == fingerprint:
                return int(row[1])
            conn.execute(
                "INSERT INTO links (channel, account_id, fingerprint, linked_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (channel, account_id) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, linked_at = excluded.linked_at",
                (slot.channel, slot.account_id, fingerprint, now),
            )
            return now

        slot.linked_at = await self.db.transaction(write)

    # -- routes ----------------------------------------------------------------------------------

    async def dispatched(self, keys: Sequence[str], session: str, route: Route) -> None:
        """The turn starts: its rows become ``dispatched`` and the session's ``lastRoute``
        is this chat -- one transaction."""
        assert self.db is not None

        def write(conn: sqlite3.Connection) -> None:
            for key in keys:
                conn.execute("UPDATE inbound SET state = 'dispatched' WHERE key = ?", (key,))
            _upsert_route(conn, session, route, self.rt.now_ms())

        await self.db.transaction(write)

    async def record_route(self, key: str, route: Route) -> None:
        await self.open_ledger()
        assert self.db is not None
        now = self.rt.now_ms()
        await self.db.run(lambda conn: _upsert_route(conn, key, route, now))

    async def last_route(self, key: str) -> Route | None:
        await self.open_ledger()  # a service made on first use has no connection yet
        assert self.db is not None

        def read(conn: object) -> Route | None:
            row = conn.execute(  # type: ignore[attr-defined]
                "SELECT * FROM session_routes WHERE session_key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            return Route(
                row["channel"],
                row["account_id"],
                row["to_id"],
                row["thread_id"] or None,
                row["reply_to_id"] or None,
            )

        return await self.db.run(read)

    async def last_routes(self, keys: Sequence[str]) -> dict[str, Route]:
        """``lastRoute`` of each of ``keys`` that has one (``sessions.list``)."""
        await self.open_ledger()
        assert self.db is not None
        wanted = list(keys)

        def read(conn: sqlite3.Connection) -> dict[str, Route]:
            out: dict[str, Route] = {}
            for i in range(0, len(wanted), 500):
                batch = wanted[i : i + 500]
                marks = ",".join("?" * len(batch))
                for row in conn.execute(
                    f"SELECT * FROM session_routes WHERE session_key IN ({marks})", batch
                ):
                    out[row["session_key"]] = Route(
                        row["channel"],
                        row["account_id"],
                        row["to_id"],
                        row["thread_id"] or None,
                        row["reply_to_id"] or None,
                    )
            return out

        return await self.db.run(read)

    # -- processing ------------------------------------------------------------------------------

    def _decide(self, slot: AccountSlot, msg: Message, approved: set[str]) -> Decision:
        cfg = slot.config
        if not msg.is_group:
            return dm_decision(cfg, msg.sender_id, approved)
        config = self.rt.settings.config
        patterns = list(config.messages.group_chat.mention_patterns)
        for agent in config.agents.list_:
            if agent.group_chat is not None:
                patterns += agent.group_chat.mention_patterns
        bot = slot.extra.get("bot") or {}
        assert isinstance(cfg, TelegramAccountConfig)  # groups: Telegram only (WhatsApp v1: DMs)
        return group_decision(
            cfg,
            msg,
            bot_username=bot.get("username"),
            bot_id=str(bot["id"]) if bot.get("id") is not None else None,
            mention_patterns=patterns,
        )

    async def process(
        self,
        slot: AccountSlot,
        io: ReplyChannel,
        msg: Message,
        keys: Sequence[str],
        media_notes: Sequence[str] = (),
        *,
        fresh: bool = True,
    ) -> None:
        """Take one message (an album may carry several ledger keys) to its end state.

        ``fresh``: first seen by this run. A row found unfinished at start-up (``fresh``
        false) may have had its turn already; its outcome is looked up before running it.

        Cancellation: a cancelled turn leaves its rows ``dispatched``; they are processed
        again by the account's next run (joining the agent run if it is still going).
        """
        await self.open_ledger()
        self.inflight += 1
        try:
            slot.last_inbound_at = self.rt.now_ms()
            account_id = slot.account_id
            approved: set[str] = set()
            if (
                not msg.is_group
                and slot.config.dm_policy == "pairing"
                and msg.sender_id not in slot.config.allow_from
                and "*" not in slot.config.allow_from
            ):
                default = self.manager.default_account(slot.channel) == account_id
                store = self.pairing_store(slot.channel)
                approved = await trio.to_thread.run_sync(store.approved, account_id, default)
            decision = self._decide(slot, msg, approved)
            if decision.action == "drop":
                log.debug(
                    "%s drop message from %s in %s (%s)",
                    slot.prefix,
                    msg.sender_id,
                    msg.chat_id,
                    decision.reason,
                )
                await self.finish(keys, "dropped", decision.reason)
                return
            if decision.action == "pair":
                if not await self._pair(slot, msg, keys):
                    await self.finish(keys, "done", "pairing")
                return
            lane = (account_id, msg.lane)
            if decision.action == "history":
                log.debug("%s drop message in %s (mention required)", slot.prefix, msg.chat_id)
                buf = self.history.setdefault(lane, deque(maxlen=max(1, slot.config.history_limit)))
                if slot.config.history_limit:
                    buf.append(f"{msg.sender_name} (id:{msg.sender_id}): {msg.text}")
                await self.finish(keys, "done", "history (mention required)")
                return
            history = list(self.history.pop(lane, ()))
            await self._run_turn(slot, io, msg, keys, decision, history, media_notes, fresh=fresh)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._idle.set()

    async def finish(self, keys: Sequence[str], state: str, reason: str | None) -> None:
        assert self.ledger is not None
        with trio.CancelScope(shield=True):
            for key in keys:
                await self.ledger.mark(key, state, reason)  # type: ignore[arg-type]
        self.marked()

    async def reply(
        self,
        slot: AccountSlot,
        keys: Sequence[str],
        messages: Sequence[tuple[str, str, Target]],
        *,
        source: Source = "reply",
        reason: str | None = None,
    ) -> None:
        """Enqueue ``(idempotencyKey, text, target)`` messages and mark the ledger rows
        ``done`` -- one transaction."""
        records = [
            new_record(
                self.manager,
                Destination(slot.channel, slot.account_id, target),
                key,
                source,
                Payload(text),
            )
            for key, text, target in messages
        ]

        def done(conn: sqlite3.Connection) -> None:
            mark_rows(conn, keys, "done", reason)

        with trio.CancelScope(shield=True):
            await self.manager.outbox.enqueue(records, also=done)
        self.marked()

    async def _pair(self, slot: AccountSlot, msg: Message, keys: Sequence[str]) -> bool:
        """The pairing flow; ``True`` when a reply was enqueued (rows done with it)."""
        store = self.pairing_store(slot.channel)
        req, created = await trio.to_thread.run_sync(
            lambda: store.request(
                msg.sender_id,
                slot.account_id,
                self.rt.now_ms(),
                username=msg.sender_username,
                name=msg.sender_name,
            )
        )
        if req is None:
            log.debug("%s pairing request from %s ignored (3 pending)", slot.prefix, msg.sender_id)
            return False
        if not created:
            return False
        log.info(
            "%s pairing request created for %s sender %s", slot.prefix, slot.channel, msg.sender_id
        )
        text = reply_text(slot.channel, msg.sender_id, req.code)
        await self.reply(
            slot,
            keys,
            [(f"pairing:{keys[0]}", text, Target(msg.chat_id))],
            source="pairing",
            reason="pairing",
        )
        return True

    async def _run_turn(
        self,
        slot: AccountSlot,
        io: ReplyChannel,
        msg: Message,
        keys: Sequence[str],
        decision: Decision,
        history: list[str],
        media_notes: Sequence[str],
        *,
        fresh: bool,
    ) -> None:
        """Run the agent and enqueue its reply (the rows become ``done`` with it); a turn
        cut off by a stop leaves them ``dispatched``."""
        run_id = keys[0]
        config = self.rt.settings.config
        peer_kind: PeerKind = "group" if msg.is_group else "direct"
        peer_id = msg.chat_id if msg.is_group else msg.sender_id
        agent_id = select_agent(
            config,
            channel=slot.channel,
            account_id=slot.account_id,
            peer_kind=peer_kind,
            peer_id=peer_id,
            override=decision.agent_id,
        )
        rest = session_rest(
            config,
            channel=slot.channel,
            account_id=slot.account_id,
            peer_kind=peer_kind,
            peer_id=peer_id,
            thread_id=msg.thread_id if msg.is_topic else None,
        )
        key = make_session_key(agent_id, rest)
        thread = msg.thread_id if msg.is_topic else None
        reply_to = str(msg.message_id) if slot.config.reply_to_mode != "off" else None
        thread_text = None if thread is None else str(thread)
        await self.dispatched(
            keys,
            key,
            Route(slot.channel, slot.account_id, msg.chat_id, thread_text, str(msg.message_id)),
        )
        payloads = None if fresh else await self._prior(agent_id, rest, run_id)
        if payloads is None:
            text = envelope(msg, history, media_notes)
            try:
                run = self.rt.agents.start(
                    RunRequest(run_id=run_id, message=text, agent_id=agent_id, session_key=key)
                )
            except GatewayError as exc:
                if self.rt.draining:
                    return
                log.warning("%s cannot start agent run: %s", slot.prefix, exc)
                sorry = f"Sorry, I cannot answer right now: {exc}"
                await self.reply(
                    slot, keys, [(f"reply:{run_id}:0", sorry, Target(msg.chat_id, thread_text))]
                )
                return
            async with trio.open_nursery() as nursery:
                # the typing loop ends by itself once the run is done: cancelling it in the
                # middle of a request would waste the connection it was using
                nursery.start_soon(self._typing, io, msg.chat_id, msg.thread_id, run.done)
                await run.done.wait()
            if run.status == "interrupted":
                return
            if run.status != "ok":
                payloads = [f"Sorry, something went wrong: {run.summary}"]
            else:
                payloads = list(run.payloads)
        replies = [p for p in payloads if p.strip() and not suppressed(p)]
        texts = []
        for i, text in enumerate(replies):
            first = i == 0
            target = reply_to if (slot.config.reply_to_mode == "all" or first) else None
            texts.append((f"reply:{run_id}:{i}", text, Target(msg.chat_id, thread_text, target)))
        await self.reply(slot, keys, texts)

    async def _prior(self, agent_id: str, rest: str, run_id: str) -> list[str] | None:
        """A finished outcome for ``run_id``: the agent's idempotency cache, else the
        transcript (after a restart); ``None`` if the turn has not run to the end."""
        run = self.rt.agents.find(run_id)
        if run is not None and run.status == "ok":
            return list(run.payloads)
        if run is not None:
            return None  # still running (joined by start) or failed: run it (again)
        records = await self.rt.agents.store.read(self.rt.settings.paths.state_dir, agent_id, rest)
        return prior_reply(records, run_id)

    async def _typing(
        self, io: ReplyChannel, chat_id: str, thread_id: int | None, done: trio.Event
    ) -> None:
        """``typing`` now and every 4 s (Telegram shows it 5 s) until ``done``, at most 10 min."""
        with trio.move_on_after(TYPING_MAX_S):
            while not done.is_set():
                try:
                    await io.typing(chat_id, thread_id)
                except Exception:
                    log.debug("typing indicator failed", exc_info=True)
                with trio.move_on_after(TYPING_EVERY_S):
                    await done.wait()


def _upsert_route(conn: sqlite3.Connection, session: str, route: Route, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO session_routes (session_key, channel, account_id, to_id, thread_id,"
        " reply_to_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_key) DO UPDATE SET channel = excluded.channel,"
        " account_id = excluded.account_id, to_id = excluded.to_id,"
        " thread_id = excluded.thread_id, reply_to_id = excluded.reply_to_id,"
        " updated_at = excluded.updated_at",
        (
            session,
            route.channel,
            route.account_id,
            route.to,
            None if route.thread_id is None else str(route.thread_id),
            None if route.reply_to_id is None else str(route.reply_to_id),
            now_ms,
        ),
    )
