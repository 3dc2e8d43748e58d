"""Telegram updates -> inbound messages, or a reason to drop them (CHANNELS.md 3.2, 3.4). Pure.

Updates come from the network, so nothing here trusts their shape: a missing ``message``,
an unknown update type, a wrong type for a field, oversized text or text with lone
surrogates become a :class:`Drop` with a reason (logged once, marked ``dropped`` in the
ledger) -- never an exception that would stop the poller.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

MAX_TEXT = 16_384  # Telegram itself allows 4096; anything far beyond is not a real message
MediaKind = Literal["image", "audio", "video", "document", "sticker"]


@attrs.frozen
class Media:
    kind: MediaKind
    file_id: str
    file_size: int | None = None
    file_name: str | None = None
    mime_type: str | None = None


@attrs.frozen
class ReplyContext:
    message_id: int | str  # a WhatsApp wamid is a string
    sender_id: str | None
    sender_name: str | None
    text: str
    from_bot: bool


@attrs.frozen
class Entity:
    type: str
    offset: int
    length: int
    user_id: str | None = None


@attrs.frozen
class Message:
    update_id: int
    message_id: int | str  # Telegram: an int; WhatsApp: the wamid
    chat_id: str
    chat_type: str  # private | group | supergroup | channel
    thread_id: int | None
    is_topic: bool
    sender_id: str
    sender_username: str | None
    sender_name: str
    text: str
    entities: tuple[Entity, ...] = ()
    media: tuple[Media, ...] = ()
    reply: ReplyContext | None = None
    media_group_id: str | None = None
    date: int | None = None
    channel: str = "telegram"  # the same shape carries WhatsApp messages (whatsapp/inbound.py)

    @property
    def is_group(self) -> bool:
        return self.chat_type in ("group", "supergroup")

    @property
    def lane(self) -> str:
        """One sequential lane per chat and topic."""
        return f"{self.chat_id}:{self.thread_id}" if self.is_topic else self.chat_id


@attrs.frozen
class Drop:
    update_id: int | None
    reason: str
    chat_id: str | None = None


def clean_text(value: object) -> str:
    """A str with lone surrogates replaced (they cannot be stored or sent as UTF-8)."""
    if not isinstance(value, str):
        return ""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _str_id(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return value
    return None


def _name(user: dict[str, Any]) -> str:
    parts = [clean_text(user.get("first_name")), clean_text(user.get("last_name"))]
    name = " ".join(p for p in parts if p).strip()
    return name or clean_text(user.get("username")) or "unknown"


def _media(msg: dict[str, Any]) -> tuple[Media, ...]:
    found: list[Media] = []
    photos = msg.get("photo")
    if isinstance(photos, list) and photos:
        sizes = [p for p in photos if isinstance(p, dict) and isinstance(p.get("file_id"), str)]
        if sizes:
            best = max(sizes, key=lambda p: (p.get("file_size") or 0, p.get("width") or 0))
            found.append(Media("image", best["file_id"], _int(best.get("file_size"))))
    for key, kind in (
        ("document", "document"),
        ("voice", "audio"),
        ("audio", "audio"),
        ("video", "video"),
        ("video_note", "video"),
        ("animation", "video"),
        ("sticker", "sticker"),
    ):
        item = msg.get(key)
        if isinstance(item, dict) and isinstance(item.get("file_id"), str):
            if key == "document" and "animation" in msg:
                continue
            found.append(
                Media(
                    kind,  # type: ignore[arg-type]
                    item["file_id"],
                    _int(item.get("file_size")),
                    clean_text(item.get("file_name")) or None,
                    clean_text(item.get("mime_type")) or None,
                )
            )
    return tuple(found)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entities(msg: dict[str, Any], key: str) -> tuple[Entity, ...]:
    raw = msg.get(key)
    out: list[Entity] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        offset, length = _int(item.get("offset")), _int(item.get("length"))
        if offset is None or length is None or not isinstance(item.get("type"), str):
            continue
        user = item.get("user")
        user_id = _str_id(user.get("id")) if isinstance(user, dict) else None
        out.append(Entity(item["type"], offset, length, user_id))
    return tuple(out)


def parse_update(update: object, bot_id: str | None) -> Message | Drop:
    """One update from ``getUpdates``; ``bot_id`` tells replies to the bot apart."""
    if not isinstance(update, dict):
        return Drop(None, "update is not an object")
    update_id = _int(update.get("update_id"))
    if update_id is None:
        return Drop(None, "update without a numeric update_id")
    msg = update.get("message")
    if msg is None:
        kinds = sorted(k for k in update if k != "update_id")
        kind = kinds[0] if kinds else "nothing"
        if kind in ("edited_message", "channel_post", "edited_channel_post"):
            return Drop(update_id, f"{kind} ignored")
        return Drop(update_id, f"unsupported update type: {kind}")
    if not isinstance(msg, dict):
        return Drop(update_id, "message is not an object")
    chat = msg.get("chat")
    sender = msg.get("from")
    if not isinstance(chat, dict) or _str_id(chat.get("id")) is None:
        return Drop(update_id, "message without a chat id")
    chat_id = _str_id(chat.get("id"))
    assert chat_id is not None
    if not isinstance(sender, dict) or _str_id(sender.get("id")) is None:
        return Drop(update_id, "message without a sender", chat_id)
    if sender.get("is_bot") is True:
        return Drop(update_id, "message from a bot", chat_id)
    message_id = _int(msg.get("message_id"))
    if message_id is None:
        return Drop(update_id, "message without a message_id", chat_id)
    raw_text = msg.get("text", msg.get("caption", ""))
    if raw_text is not None and not isinstance(raw_text, str):
        return Drop(update_id, "text is not a string", chat_id)
    text = clean_text(raw_text or "")
    if len(text) > MAX_TEXT:
        return Drop(update_id, f"text too long ({len(text)} characters)", chat_id)
    media = _media(msg)
    if not text and not media:
        return Drop(update_id, "message without text or supported media", chat_id)
    reply = None
    replied = msg.get("reply_to_message")
    if isinstance(replied, dict) and _int(replied.get("message_id")) is not None:
        who = replied.get("from") if isinstance(replied.get("from"), dict) else {}
        assert isinstance(who, dict)
        who_id = _str_id(who.get("id"))
        reply = ReplyContext(
            message_id=int(replied["message_id"]),
            sender_id=who_id,
            sender_name=_name(who) if who else None,
            text=clean_text(replied.get("text", replied.get("caption", "")))[:500],
            from_bot=who_id is not None and who_id == bot_id,
        )
    is_topic = msg.get("is_topic_message") is True
    thread_id = _int(msg.get("message_thread_id"))
    chat_type = chat.get("type") if isinstance(chat.get("type"), str) else "private"
    if chat_type == "supergroup" and chat.get("is_forum") is True and thread_id is None:
        thread_id, is_topic = 1, True  # the General topic
    # a reply inside a non-forum chat also carries message_thread_id: not a topic
    if not is_topic and chat.get("is_forum") is not True:
        thread_id = None
    group_id = msg.get("media_group_id")
    return Message(
        update_id=update_id,
        message_id=message_id,
        chat_id=chat_id,
        chat_type=str(chat_type),
        thread_id=thread_id,
        is_topic=is_topic or (chat.get("is_forum") is True and thread_id is not None),
        sender_id=_str_id(sender.get("id")) or "",
        sender_username=clean_text(sender.get("username")) or None,
        sender_name=_name(sender),
        text=text,
        entities=_entities(msg, "entities" if "text" in msg else "caption_entities"),
        media=media,
        reply=reply,
        media_group_id=group_id if isinstance(group_id, str) else None,
        date=_int(msg.get("date")),
    )


def chat_of(update: object) -> str | None:
    """The chat id of any update, for the ledger row (best effort)."""
    if not isinstance(update, dict):
        return None
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        msg = update.get(key)
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return _str_id(msg["chat"].get("id"))
    return None


def placeholder(media: Media) -> str:
    return f"<media:{media.kind}>"


def merge_album(parts: list[Message]) -> Message:
    """The parts of one album (same ``media_group_id``) as one message."""
    first = parts[0]
    text = next((p.text for p in parts if p.text), "")
    media = tuple(m for p in parts for m in p.media)
    return attrs.evolve(first, text=text, media=media)
