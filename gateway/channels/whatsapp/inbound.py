"""WhatsApp webhook payloads -> ledger rows, and rows -> messages or statuses (CHANNELS.md
4.2, 4.5). Pure.

A POST carries ``entry[].changes[]``; each change with ``field: "messages"`` holds, for one
of our numbers (``value.metadata.phone_number_id``), ``messages[]`` (with ``contacts[]``
for the senders' names) and/or ``statuses[]``. :func:`rows_of` turns a payload into
ledger rows -- ``wa:<acct>:<wamid>`` for a message, ``wa:<acct>:st:<wamid>:<status>`` for a
status -- each carrying what it needs as its ``raw`` JSON, so a row re-dispatched after a
restart parses exactly as it did the first time (:func:`message_of`, :func:`status_of`).

Nothing trusts the payload's shape: what cannot be used becomes a ``Drop`` or is skipped,
never an exception.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..ledger import Inbound
from ..telegram.inbound import MAX_TEXT, Drop, Media, MediaKind, Message, ReplyContext, clean_text

MEDIA_KINDS: dict[str, MediaKind] = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
}
STATUSES = ("sent", "delivered", "read", "failed")


@attrs.frozen
class Parsed:
    rows: list[Inbound]
    messages: int
    statuses: int
    foreign: list[str]  # phone_number_ids of changes that were not ours (ignored)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def rows_of(
    payload: object, channel: str, account_id: str, phone_number_id: str, now_ms: int
) -> Parsed:
    rows: list[Inbound] = []
    messages = statuses = 0
    foreign: list[str] = []
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            number = str(metadata.get("phone_number_id", "")) if isinstance(metadata, dict) else ""
            if number != phone_number_id:
                foreign.append(number or "<none>")
                continue
            contacts = {
                str(c.get("wa_id")): c
                for c in value.get("contacts") or []
                if isinstance(c, dict) and c.get("wa_id") is not None
            }
            for msg in value.get("messages") or []:
                if not isinstance(msg, dict) or not _str(msg.get("id")):
                    continue
                sender = str(msg.get("from", ""))
                raw = {"message": msg, "contact": contacts.get(sender)}
                rows.append(
                    Inbound(
                        f"wa:{account_id}:{msg['id']}",
                        channel,
                        account_id,
                        sender or None,
                        now_ms,
                        json.dumps(raw, ensure_ascii=True, separators=(",", ":")),
                    )
                )
                messages += 1
            for status in value.get("statuses") or []:
                if not isinstance(status, dict) or not _str(status.get("id")):
                    continue
                state = str(status.get("status", "unknown"))
                rows.append(
                    Inbound(
                        f"wa:{account_id}:st:{status['id']}:{state}",
                        channel,
                        account_id,
                        _str(status.get("recipient_id")),
                        now_ms,
                        json.dumps({"status": status}, ensure_ascii=True, separators=(",", ":")),
                    )
                )
                statuses += 1
    return Parsed(rows, messages, statuses, foreign)


def is_status(row: Inbound) -> bool:
    return row.key.startswith(f"wa:{row.account_id}:st:")


def _text_of(msg: dict[str, Any], kind: str) -> str | None:
    if kind == "text":
        body = msg.get("text")
        return _str(body.get("body")) if isinstance(body, dict) else None
    if kind in MEDIA_KINDS:
        media = msg.get(kind)
        return _str(media.get("caption")) if isinstance(media, dict) else None
    if kind == "button":
        button = msg.get("button")
        return _str(button.get("text")) if isinstance(button, dict) else None
    if kind == "interactive":
        inter = msg.get("interactive")
        if isinstance(inter, dict):
            for key in ("button_reply", "list_reply"):
                reply = inter.get(key)
                if isinstance(reply, dict):
                    return _str(reply.get("title"))
        return None
    if kind == "location":
        loc = msg.get("location")
        if isinstance(loc, dict):
            where = ", ".join(
                str(loc[k]) for k in ("name", "address") if isinstance(loc.get(k), str)
            )
            return f"<location: {loc.get('latitude')}, {loc.get('longitude')}{' ' + where if where else ''}>"
        return None
    if kind == "contacts":
        people = []
        for contact in msg.get("contacts") or []:
            if isinstance(contact, dict):
                name = (
                    (contact.get("name") or {}).get("formatted_name")
                    if isinstance(contact.get("name"), dict)
                    else None
                )
                phones = [
                    p.get("phone") for p in contact.get("phones") or [] if isinstance(p, dict)
                ]
                people.append(" ".join(str(x) for x in [name, *phones] if x))
        return "<contact: " + "; ".join(people) + ">" if people else None
    return None


def message_of(row: Inbound) -> Message | Drop:
    """The message a row holds, or why it is not one to process."""
    try:
        raw = json.loads(row.raw or "null")
    except ValueError:
        return Drop(None, "unreadable row", row.chat_id)
    msg = raw.get("message") if isinstance(raw, dict) else None
    if not isinstance(msg, dict):
        return Drop(None, "not a message", row.chat_id)
    sender = _str(msg.get("from"))
    wamid = _str(msg.get("id"))
    if sender is None or wamid is None or not sender.isdigit():
        return Drop(None, "message without a usable sender", row.chat_id)
    kind = str(msg.get("type", "unknown"))
    if kind in ("reaction", "unsupported", "system", "ephemeral", "unknown", "request_welcome"):
        return Drop(None, f"{kind} message (nothing to answer)", sender)
    text = clean_text(_text_of(msg, kind) or "")
    if len(text) > MAX_TEXT:
        return Drop(None, f"text longer than {MAX_TEXT} characters", sender)
    media: tuple[Media, ...] = ()
    if kind in MEDIA_KINDS and isinstance(msg.get(kind), dict):
        item = msg[kind]
        media_id = _str(item.get("id"))
        if media_id:
            media = (
                Media(
                    MEDIA_KINDS[kind],
                    media_id,
                    item.get("file_size") if isinstance(item.get("file_size"), int) else None,
                    _str(item.get("filename")),
                    _str(item.get("mime_type")),
                ),
            )
    if not text and not media:
        return Drop(None, f"{kind} message without text", sender)
    contact = raw.get("contact")
    profile = contact.get("profile") if isinstance(contact, dict) else None
    given = _str(profile.get("name")) if isinstance(profile, dict) else None
    name = clean_text(given or "") or f"+{sender}"
    reply = None
    context = msg.get("context")
    if isinstance(context, dict) and _str(context.get("id")):
        reply = ReplyContext(
            message_id=str(context["id"]),
            sender_id=f"+{context['from']}" if _str(context.get("from")) else None,
            sender_name=None,
            text="",
            from_bot=False,
        )
    timestamp = msg.get("timestamp")
    return Message(
        update_id=0,
        message_id=wamid,
        chat_id=sender,
        chat_type="private",
        thread_id=None,
        is_topic=False,
        sender_id=f"+{sender}",
        sender_username=None,
        sender_name=name,
        text=text,
        media=media,
        reply=reply,
        date=int(timestamp) if isinstance(timestamp, str) and timestamp.isdigit() else None,
        channel="whatsapp",
    )


@attrs.frozen
class Status:
    platform_id: str
    status: str
    opaque: str | None
    error: str | None
    error_code: int | None


def status_of(row: Inbound) -> Status | None:
    try:
        raw = json.loads(row.raw or "null")
    except ValueError:
        return None
    status = raw.get("status") if isinstance(raw, dict) else None
    if not isinstance(status, dict) or not _str(status.get("id")):
        return None
    error = code = None
    errors = status.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = first.get("code") if isinstance(first.get("code"), int) else None
        details = (
            first.get("error_data", {}).get("details")
            if isinstance(first.get("error_data"), dict)
            else None
        )
        text = _str(first.get("message")) or _str(first.get("title")) or "failed"
        error = f"Graph error {code}: {text}" + (f" ({details})" if details else "")
    return Status(
        str(status["id"]),
        str(status.get("status", "")),
        _str(status.get("biz_opaque_callback_data")),
        error,
        code,
    )
