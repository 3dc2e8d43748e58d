"""Sending through the Cloud API: the account's outbox :class:`Sender` (CHANNELS.md 4.3).

Each part is one ``POST /<ver>/<phoneNumberId>/messages``: a text chunk rendered to
WhatsApp's marks, or a media item by ``link`` (a URL) or by ``id`` (a file uploaded first),
with its caption. Every request carries ``biz_opaque_callback_data: "<recordId>:<part>"``,
which Meta echoes in status webhooks: that is how a status finds its part, and how a part
left ``sending`` by a crash is settled without resending it. The first part answers the
message the record replies to (``context.message_id``).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ..outbox.model import Part, Record
from ..outbox.pacing import WHATSAPP
from ..sending import SendError
from ..slot import AccountSlot
from .api import GraphApi, GraphError, GraphNetworkError, classify
from .config import WhatsAppAccountConfig
from .format import render

MEDIA_LIMIT = 100 * 1024 * 1024


def media_kind(mime: str | None, name: str, *, force_document: bool) -> str:
    if force_document:
        return "document"
    mime = mime or mimetypes.guess_type(name)[0] or ""
    if mime in ("image/jpeg", "image/png"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "audio"
    return "document"


class WhatsAppSender:
    limits = WHATSAPP

    def __init__(
        self,
        api: GraphApi,
        slot: AccountSlot,
        grace_ms: Callable[[], int],
        on_auth_failure: Callable[[str], None],
    ) -> None:
        self.api = api
        self.slot = slot
        self._grace_ms = grace_ms
        self._on_auth_failure = on_auth_failure

    @property
    def ambiguous_grace_ms(self) -> int:
        """A status webhook may still prove a cut-off part arrived: wait this long."""
        return self._grace_ms()

    @property
    def cfg(self) -> WhatsAppAccountConfig:
        cfg = self.slot.config
        assert isinstance(cfg, WhatsAppAccountConfig)
        return cfg

    def is_group(self, to: str) -> bool:
        return False

    def auth_failed(self, error: str) -> None:
        """The worker saw the token rejected (its failure is committed): end the run."""
        self._on_auth_failure(error)

    async def typing(self, chat_id: str, thread_id: int | None) -> None:
        """The Cloud API has no typing indicator we could rely on (CHANNELS.md 4.2)."""

    async def mark_read(self, message_id: str) -> None:
        await self.api.post_json(
            f"{self.cfg.phone_number_id}/messages",
            {"messaging_product": "whatsapp", "status": "read", "message_id": message_id},
        )

    async def send_part(self, record: Record, part: Part) -> str:
        target = record.target
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": target.to,
            "biz_opaque_callback_data": f"{record.id}:{part.idx}",
        }
        if part.idx == 0 and target.reply_to_id:
            body["context"] = {"message_id": target.reply_to_id}
        try:
            if part.kind == "media":
                body.update(await self._media(record, json.loads(part.body)))
            else:
                body["type"] = "text"
                body["text"] = {"body": render(part.body), "preview_url": False}
            answer = await self.api.post_json(f"{self.cfg.phone_number_id}/messages", body)
        except (GraphError, GraphNetworkError) as exc:
            raise classify(exc) from None
        messages = answer.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            if isinstance(wamid, str) and wamid:
                return wamid
        raise SendError("ambiguous", "the Graph API answered without a message id")

    async def _media(self, record: Record, item: dict[str, Any]) -> dict[str, Any]:
        name = str(item.get("filename") or item.get("url") or item.get("path") or "file")
        kind = media_kind(item.get("mime"), name, force_document=record.payload.force_document)
        media: dict[str, Any] = {}
        if item.get("url"):
            media["link"] = item["url"]
        else:
            path = Path(str(item.get("path")))
            try:
                data = await trio.to_thread.run_sync(path.read_bytes)
            except OSError as exc:
                raise SendError("permanent", f"media file {path.name}: {exc.strerror}") from None
            if len(data) > MEDIA_LIMIT:
                raise SendError("permanent", f"media file {path.name} is over 100 MB")
            mime = item.get("mime") or mimetypes.guess_type(name)[0] or "application/octet-stream"
            media["id"] = await self.api.upload(
                data, str(mime), str(item.get("filename") or path.name)
            )
        caption = item.get("caption")
        if caption and kind != "audio":  # audio takes no caption
            media["caption"] = render(str(caption))
        if kind == "document" and item.get("filename"):
            media["filename"] = str(item["filename"])
        return {"type": kind, kind: media}
