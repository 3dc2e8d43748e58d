"""Sending to Telegram: what the outbox worker calls for a running account (CHANNELS.md 3.4).

:class:`TelegramSender` is the account's :class:`~gateway.channels.sending.Sender`:

* :meth:`~TelegramSender.send_part` -- one outbox part: a text chunk as HTML with a
  plain-text fallback on a parse error, or one media item (by URL, or uploaded from the
  state dir) with its caption; ``migrate_to_chat_id`` followed. Returns the message id
  or raises :class:`SendError` whose ``kind`` is the outbox's error class (network |
  rate_limit | ambiguous | permanent | auth);
* :meth:`~TelegramSender.typing` -- the chat action (best effort, not through the outbox).

A 429 pauses this account's send lane for ``retry_after`` (+ up to 1 s of jitter): every
later call of the lane waits for it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import random
from pathlib import Path
from typing import Any

import trio

from ..accounts import TelegramAccountConfig
from ..outbox.model import Part, Record
from ..outbox.pacing import TELEGRAM
from ..sending import SendError
from ..slot import AccountSlot
from .api import BotApi, BotApiError, BotNetworkError
from .format import render_or_plain, split_text, strip_tags, utf16_len

log = logging.getLogger("gateway.channels.telegram")

__all__ = ["RateGate", "SendError", "TelegramSender", "classify_send_error", "probe_account"]


def classify_send_error(exc: BotApiError | BotNetworkError) -> SendError:
    if isinstance(exc, BotNetworkError):
        return SendError("ambiguous" if exc.sent else "network", str(exc))
    if exc.error_code == 429:
        return SendError("rate_limit", str(exc), exc.retry_after, 429)
    if exc.error_code == 401:
        return SendError("auth", str(exc), status=401)
    if exc.error_code >= 500:
        return SendError("network", str(exc), status=exc.error_code)
    return SendError("permanent", str(exc), status=exc.error_code)


MEDIA_METHODS = {
    "photo": "sendPhoto",
    "video": "sendVideo",
    "voice": "sendVoice",
    "audio": "sendAudio",
    "document": "sendDocument",
}


def media_kind(mime: str | None, name: str, *, as_voice: bool, force_document: bool) -> str:
    """Which Bot API method a media item goes out with."""
    if force_document:
        return "document"
    mime = mime or mimetypes.guess_type(name)[0] or ""
    if mime.startswith("image/") and mime != "image/gif":
        return "photo"
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "voice" if as_voice else "audio"
    return "document"


class TelegramSender:
    limits = TELEGRAM
    ambiguous_grace_ms = 0  # Telegram never tells us later whether a message arrived

    def __init__(self, api: BotApi, slot: AccountSlot) -> None:
        self.api = api
        self.slot = slot
        self.gate = RateGate(slot.prefix)  # the account's send lane

    @property
    def prefix(self) -> str:
        return self.slot.prefix

    @property
    def cfg(self) -> TelegramAccountConfig:
        cfg = self.slot.config
        assert isinstance(cfg, TelegramAccountConfig)
        return cfg

    def is_group(self, to: str) -> bool:
        return to.startswith("-")

    async def typing(self, chat_id: str, thread_id: int | None) -> None:
        params: dict[str, Any] = {"chat_id": chat_id, "action": "typing"}
        if thread_id is not None:
            params["message_thread_id"] = thread_id
        await self.api.call("sendChatAction", params)

    def parts(self, text: str) -> list[str]:
        return split_text(text, self.cfg.text_chunk_limit, self.cfg.chunk_mode)

    def _common(self, record: Record, part: Part) -> dict[str, Any]:
        target = record.target
        params: dict[str, Any] = {"chat_id": target.to}
        thread = int(target.thread_id) if target.thread_id and target.thread_id.isdigit() else None
        if thread is not None and thread != 1:  # the General topic rejects the id
            params["message_thread_id"] = thread
        if part.idx == 0 and target.reply_to_id and target.reply_to_id.isdigit():
            params["reply_parameters"] = {
                "message_id": int(target.reply_to_id),
                "allow_sending_without_reply": True,
            }
        if record.payload.silent:
            params["disable_notification"] = True
        return params

    async def send_part(self, record: Record, part: Part) -> str:
        params = self._common(record, part)
        if part.kind == "media":
            return str(await self._send_media(record, json.loads(part.body), params))
        return str(await self._send_chunk(part.body, params, record.payload.parse_mode))

    async def _send_chunk(self, text: str, params: dict[str, Any], parse_mode: str | None) -> int:
        """One chunk, HTML with a plain-text fallback; returns its message id."""
        if parse_mode == "HTML":  # the caller wrote the HTML itself
            body, is_html = text, True
        else:
            body, is_html = render_or_plain(text)
        params = dict(params, text=body)
        if is_html:
            params["parse_mode"] = "HTML"
        if not self.cfg.link_preview:
            params["link_preview_options"] = {"is_disabled": True}
        return await self._call("sendMessage", params, text, is_html)

    async def _call(
        self,
        method: str,
        params: dict[str, Any],
        plain_text: str,
        is_html: bool,
        upload: tuple[str, str, bytes, str] | None = None,
    ) -> int:
        await self.gate.wait()
        try:
            return await self._send(method, params, upload)
        except BotApiError as exc:
            text_key = "text" if method == "sendMessage" else "caption"
            if exc.parse_error and is_html:
                log.info(
                    "%s HTML rejected (%s); sending as plain text", self.prefix, exc.description
                )
                plain = dict(params)
                plain[text_key] = strip_tags(str(params.get(text_key, "")))
                plain.pop("parse_mode", None)
                if utf16_len(plain[text_key]) == 0:
                    plain[text_key] = plain_text
                try:
                    return await self._send(method, plain, upload)
                except BotApiError as again:
                    exc = again
                except BotNetworkError as again:
                    raise classify_send_error(again) from None
            if exc.migrate_to_chat_id is not None:
                log.info(
                    "%s chat %s became supergroup %s; resending there",
                    self.prefix,
                    params.get("chat_id"),
                    exc.migrate_to_chat_id,
                )
                params = dict(params, chat_id=str(exc.migrate_to_chat_id))
                try:
                    return await self._send(method, params, upload)
                except (BotApiError, BotNetworkError) as again:
                    raise classify_send_error(again) from None
            if exc.error_code == 429:
                self.gate.pause(exc, method)
            raise classify_send_error(exc) from None
        except BotNetworkError as exc:
            raise classify_send_error(exc) from None

    async def _send(
        self, method: str, params: dict[str, Any], upload: tuple[str, str, bytes, str] | None
    ) -> int:
        if upload is None:
            result = await self.api.call(method, params)
        else:
            result = await self.api.call_upload(method, params, *upload)
        if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
            raise BotNetworkError(method, "unexpected answer (no message_id)", sent=True)
        return int(result["message_id"])

    async def _send_media(
        self, record: Record, item: dict[str, Any], params: dict[str, Any]
    ) -> int:
        payload = record.payload
        name = str(item.get("filename") or item.get("url") or item.get("path") or "file")
        kind = media_kind(
            item.get("mime"), name, as_voice=payload.as_voice, force_document=payload.force_document
        )
        method = MEDIA_METHODS[kind]
        caption = str(item.get("caption") or "")
        is_html = False
        if caption:
            body, is_html = render_or_plain(caption)
            params = dict(params, caption=body)
            if is_html:
                params["parse_mode"] = "HTML"
        upload: tuple[str, str, bytes, str] | None = None
        if item.get("url"):
            params[kind] = item["url"]
        else:
            path = Path(str(item.get("path")))
            limit = self.cfg.media_max_mb * 1024 * 1024
            try:
                data = await trio.to_thread.run_sync(_read_limited, path, limit)
            except OSError as exc:
                raise SendError("permanent", f"media file {path.name}: {exc.strerror}") from None
            if data is None:
                note = (
                    f"(file {item.get('filename') or path.name} not sent: it is over "
                    f"{self.cfg.media_max_mb} MB)"
                )
                text_params = {
                    k: v for k, v in params.items() if k not in ("caption", "parse_mode")
                }
                return await self._send_chunk((caption + "\n\n" + note).strip(), text_params, None)
            mime = item.get("mime") or mimetypes.guess_type(name)[0] or "application/octet-stream"
            upload = (kind, str(item.get("filename") or path.name), data, str(mime))
        return await self._call(method, params, caption, is_html, upload)


def _read_limited(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or ``None`` when it is larger than ``limit``."""
    if path.stat().st_size > limit:
        return None
    return path.read_bytes()


class RateGate:
    """One lane's 429 pause: ``retry_after`` + U(0, 1) s for every later call of the lane."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.until = 0.0  # trio time

    async def wait(self) -> None:
        delay = self.until - trio.current_time()
        if delay > 0:
            await trio.sleep(delay)

    def pause(self, exc: BotApiError, method: str) -> None:
        retry = exc.retry_after if exc.retry_after is not None else 1.0
        log.info("%s rate limited: retry after %ss (%s)", self.prefix, f"{retry:g}", method)
        self.until = max(self.until, trio.current_time() + retry + random.uniform(0, 1))

    async def pause_and_wait(self, exc: BotApiError, method: str) -> None:
        self.pause(exc, method)
        await self.wait()


async def probe_account(api: BotApi, timeout_s: float) -> dict[str, Any]:
    """``getMe`` + ``getWebhookInfo``: the ``probe`` object of CHANNELS.md 7.2."""
    start = trio.current_time()
    result: dict[str, Any] = {"ok": False, "status": None, "error": None, "elapsedMs": 0}
    with trio.move_on_after(timeout_s) as scope:
        try:
            me = await api.call("getMe", timeout_s=timeout_s)
            result["bot"] = {
                "id": me.get("id"),
                "username": me.get("username"),
                "canJoinGroups": me.get("can_join_groups"),
                "canReadAllGroupMessages": me.get("can_read_all_group_messages"),
            }
            info = await api.call("getWebhookInfo", timeout_s=timeout_s)
            result["webhook"] = {"url": (info or {}).get("url") or None}
            result["ok"] = True
        except BotApiError as exc:
            result["status"] = exc.error_code
            result["error"] = exc.description
        except BotNetworkError as exc:
            result["status"] = None
            result["error"] = str(exc)
    if scope.cancelled_caught:
        result["error"] = f"timed out after {int(timeout_s * 1000)}ms"
    result["elapsedMs"] = int((trio.current_time() - start) * 1000)
    return result
