"""Outbox records and parts as values (CHANNELS.md 6.2). Pure: no I/O, no clock.

A **record** is one message the gateway has promised to deliver: where to (``Target``), what
(``Payload``), under which ``idempotencyKey``. It is split into ordered **parts** when it
is written -- text chunks, media items -- so a retry resends exactly the parts that are
not confirmed: a 3-chunk reply that failed on chunk 2 never resends chunk 1.

Record states::

    pending -> sending -> sent
       ^          |   \\-> partial_failed   (some parts sent, then a permanent failure)
       |          |    \\-> failed          (permanent failure before any part was sent)
       \\----------/  retry (network, rate limit, ambiguous under ``resend``)
    pending -> expired   (older than outbox.maxAgeMs)      pending -> cancelled

Part states: ``pending -> sending -> sent | failed | cancelled``. A part found ``sending``
when nobody is sending it (after a crash) or whose request may have reached the platform
(a read timeout, a reset mid-response) is **ambiguous**: ``outbox.ambiguous`` decides.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

RecordState = Literal[
    "pending", "sending", "sent", "partial_failed", "failed", "expired", "cancelled"
]
PartState = Literal["pending", "sending", "sent", "failed", "cancelled"]
ErrorClass = Literal["network", "rate_limit", "ambiguous", "permanent", "auth"]
Source = Literal["send", "agent", "reply", "pairing", "heartbeat", "chat", "notify", "hook"]
DeliveryState = Literal["sent", "delivered", "read", "failed"]

OPEN_STATES: tuple[RecordState, ...] = ("pending", "sending")
TERMINAL_STATES: tuple[RecordState, ...] = (
    "sent",
    "partial_failed",
    "failed",
    "expired",
    "cancelled",
)
DELIVERY_ORDER = {"sent": 1, "delivered": 2, "read": 3}


@attrs.frozen
class Target:
    """Where a record goes: a chat (Telegram id / ``@name``; WhatsApp digits), its topic,
    the message it answers (first part only)."""

    to: str
    thread_id: str | None = None
    reply_to_id: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"to": self.to}
        if self.thread_id is not None:
            out["threadId"] = self.thread_id
        if self.reply_to_id is not None:
            out["replyToId"] = self.reply_to_id
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Target:
        thread, reply = data.get("threadId"), data.get("replyToId")
        return cls(
            str(data["to"]),
            None if thread is None else str(thread),
            None if reply is None else str(reply),
        )


@attrs.frozen
class Media:
    """One media item: a URL (sent by link) or a file under the state dir (uploaded)."""

    url: str | None = None
    path: str | None = None
    mime: str | None = None
    filename: str | None = None

    def wire(self) -> dict[str, Any]:
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Media:
        return cls(data.get("url"), data.get("path"), data.get("mime"), data.get("filename"))


@attrs.frozen
class Payload:
    text: str = ""
    media: tuple[Media, ...] = ()
    parse_mode: str | None = None
    silent: bool = False
    as_voice: bool = False
    force_document: bool = False

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.media:
            out["media"] = [m.wire() for m in self.media]
        for key, value in (
            ("parseMode", self.parse_mode),
            ("silent", self.silent or None),
            ("asVoice", self.as_voice or None),
            ("forceDocument", self.force_document or None),
        ):
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Payload:
        return cls(
            str(data.get("text") or ""),
            tuple(Media.from_wire(m) for m in data.get("media") or ()),
            data.get("parseMode"),
            bool(data.get("silent")),
            bool(data.get("asVoice")),
            bool(data.get("forceDocument")),
        )


@attrs.frozen
class Mirror:
    """Where a confirmed part is mirrored (CHANNELS.md 5.5): the target's session."""

    session_key: str
    agent_id: str

    def wire(self) -> dict[str, Any]:
        return {"sessionKey": self.session_key, "agentId": self.agent_id}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Mirror:
        return cls(str(data["sessionKey"]), str(data["agentId"]))


@attrs.frozen
class PartSpec:
    """A part as planned at enqueue time: a text chunk or one media item (with caption)."""

    kind: Literal["text", "media"]
    body: str  # the chunk; for media: JSON of {media..., caption?}


@attrs.frozen
class NewRecord:
    """What ``Outbox.enqueue`` writes (the id and timestamps are added by the store)."""

    idempotency_key: str
    source: Source
    channel: str
    account_id: str
    target: Target
    payload: Payload
    parts: tuple[PartSpec, ...]
    mirror: Mirror | None = None
    record_id: str | None = None  # chosen by the caller when files are named after it

    @property
    def chat_key(self) -> str:
        return chat_key(self.channel, self.account_id, self.target.to)


def chat_key(channel: str, account_id: str, to: str) -> str:
    """The FIFO lane of a record: one part in flight per chat, in order."""
    return f"{channel}:{account_id}:{to}"


@attrs.frozen
class Part:
    record_id: str
    idx: int
    kind: Literal["text", "media"]
    body: str
    state: PartState
    attempts: int = 0
    ambiguous: int = 0
    platform_message_id: str | None = None
    delivery_state: DeliveryState | None = None
    sending_since: int | None = None
    last_error: str | None = None
    mirrored: bool = False


@attrs.frozen
class Record:
    seq: int
    id: str
    idempotency_key: str
    source: Source
    channel: str
    account_id: str
    chat_key: str
    target: Target
    payload: Payload
    mirror: Mirror | None
    state: RecordState
    attempts: int
    next_attempt_at: int
    last_error: str | None
    last_error_class: ErrorClass | None
    error_code: str | None
    created_at: int
    updated_at: int
    sent_at: int | None
    parts: tuple[Part, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def message_id(self) -> str:
        """What ``send`` answers: the last confirmed part's platform id ('' if none)."""
        ids = [p.platform_message_id for p in self.parts if p.platform_message_id]
        return ids[-1] if ids else ""

    def wire(self) -> dict[str, Any]:
        """The record as tests, logs and ``--json`` views show it."""
        return {
            "id": self.id,
            "idempotencyKey": self.idempotency_key,
            "source": self.source,
            "channel": self.channel,
            "accountId": self.account_id,
            "target": self.target.wire(),
            "state": self.state,
            "attempts": self.attempts,
            "nextAttemptAt": self.next_attempt_at,
            "lastError": self.last_error,
            "lastErrorClass": self.last_error_class,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "sentAt": self.sent_at,
            "parts": [
                {
                    "index": p.idx,
                    "state": p.state,
                    "attempts": p.attempts,
                    "platformMessageId": p.platform_message_id,
                    "deliveryState": p.delivery_state,
                }
                for p in self.parts
            ],
        }
