"""Sending to Telegram: the narrow outbound surface of one running account (CHANNELS.md 3.4).

:class:`TelegramSender` is what replies (and, later, the durable outbox) call:

* :meth:`~TelegramSender.parts` -- the text as ordered chunks (``format.split_text``);
* :meth:`~TelegramSender.send_part` -- one chunk, HTML with a plain-text fallback on a
  parse error, ``migrate_to_chat_id`` followed; returns the message id or raises
  :class:`SendError` whose ``kind`` is the outbox's error class (network | rate_limit |
  ambiguous | permanent | auth);
* :meth:`~TelegramSender.send_text` -- all chunks in order, one reply per chat at a time,
  429 and certainly-not-sent network errors retried (what direct replies use today);
* :meth:`~TelegramSender.typing` -- the chat action.

A 429 pauses this account's send lane for ``retry_after`` (+ up to 1 s of jitter).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import trio

from ...errors import ChannelError
from ..slot import AccountSlot, wall_ms
from .api import BotApi, BotApiError, BotNetworkError
from .format import render_or_plain, split_text, strip_tags, utf16_len

log = logging.getLogger("gateway.channels.telegram")

MAX_SEND_ATTEMPTS = 5


class SendError(ChannelError):
    """A reply part that could not be sent; ``kind`` is the outbox's error class."""

    def __init__(self, kind: str, message: str, retry_after_s: float | None = None) -> None:
        self.kind = kind  # network | rate_limit | ambiguous | permanent | auth
        self.retry_after_s = retry_after_s
        super().__init__(message)


def classify_send_error(exc: BotApiError | BotNetworkError) -> SendError:
    if isinstance(exc, BotNetworkError):
        return SendError("ambiguous" if exc.sent else "network", str(exc))
    if exc.error_code == 429:
        return SendError("rate_limit", str(exc), exc.retry_after)
    if exc.error_code == 401:
        return SendError("auth", str(exc))
    if exc.error_code >= 500:
        return SendError("network", str(exc))
    return SendError("permanent", str(exc))


class TelegramSender:
    def __init__(self, api: BotApi, slot: AccountSlot) -> None:
        self.api = api
        self.slot = slot
        self._send_lock: dict[str, trio.Lock] = {}
        self.gate = RateGate(slot.prefix)  # the account's send lane

    @property
    def prefix(self) -> str:
        return self.slot.prefix

    async def typing(self, chat_id: str, thread_id: int | None) -> None:
        params: dict[str, Any] = {"chat_id": chat_id, "action": "typing"}
        if thread_id is not None:
            params["message_thread_id"] = thread_id
        await self.api.call("sendChatAction", params)

    def parts(self, text: str) -> list[str]:
        return split_text(text, self.slot.config.text_chunk_limit, self.slot.config.chunk_mode)

    async def send_text(
        self, chat_id: str, text: str, *, thread_id: int | None, reply_to: int | None
    ) -> list[int]:
        """Send ``text`` as ordered chunks; returns the message ids. Chunks of one reply
        keep their order (one at a time per chat); 429 and not-sent network errors are
        retried here, anything else raises :class:`SendError`."""
        lock = self._send_lock.setdefault(chat_id, trio.Lock())
        ids: list[int] = []
        async with lock:
            for i, part in enumerate(self.parts(text)):
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        ids.append(
                            await self.send_part(
                                chat_id,
                                part,
                                thread_id=thread_id,
                                reply_to=reply_to if i == 0 else None,
                            )
                        )
                        break
                    except SendError as exc:
                        if exc.kind == "rate_limit" and attempt < MAX_SEND_ATTEMPTS:
                            continue  # send_part already waited retry_after
                        if exc.kind == "network" and attempt < MAX_SEND_ATTEMPTS:
                            await trio.sleep(random.uniform(1, 2) * attempt)
                            continue
                        raise
        self.slot.last_outbound_at = wall_ms()
        return ids

    async def send_part(
        self, chat_id: str, text: str, *, thread_id: int | None, reply_to: int | None
    ) -> int:
        """One chunk, HTML with a plain-text fallback; returns its message id."""
        body, is_html = render_or_plain(text)
        params: dict[str, Any] = {"chat_id": chat_id, "text": body}
        if is_html:
            params["parse_mode"] = "HTML"
        if thread_id is not None and thread_id != 1:
            params["message_thread_id"] = thread_id
        if reply_to is not None:
            params["reply_parameters"] = {
                "message_id": reply_to,
                "allow_sending_without_reply": True,
            }
        if not self.slot.config.link_preview:
            params["link_preview_options"] = {"is_disabled": True}
        await self.gate.wait()
        try:
            return await self._send_message(params)
        except BotApiError as exc:
            if exc.parse_error and is_html:
                log.info(
                    "%s HTML rejected (%s); sending as plain text", self.prefix, exc.description
                )
                plain = dict(params, text=strip_tags(body))
                plain.pop("parse_mode", None)
                if utf16_len(plain["text"]) == 0:
                    plain["text"] = text
                try:
                    return await self._send_message(plain)
                except BotApiError as again:
                    exc = again
                except BotNetworkError as again:
                    raise classify_send_error(again) from None
            if exc.migrate_to_chat_id is not None:
                log.info(
                    "%s chat %s became supergroup %s; resending there",
                    self.prefix,
                    chat_id,
                    exc.migrate_to_chat_id,
                )
                params["chat_id"] = str(exc.migrate_to_chat_id)
                try:
                    return await self._send_message(params)
                except (BotApiError, BotNetworkError) as again:
                    raise classify_send_error(again) from None
            if exc.error_code == 429:
                await self.gate.pause(exc, "sendMessage")
            raise classify_send_error(exc) from None
        except BotNetworkError as exc:
            raise classify_send_error(exc) from None

    async def _send_message(self, params: dict[str, Any]) -> int:
        result = await self.api.call("sendMessage", params)
        if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
            raise BotNetworkError("sendMessage", "unexpected answer (no message_id)", sent=True)
        return int(result["message_id"])


class RateGate:
    """One lane's 429 pause: ``retry_after`` + U(0, 1) s for every later call of the lane."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.until = 0.0  # trio time

    async def wait(self) -> None:
        delay = self.until - trio.current_time()
        if delay > 0:
            await trio.sleep(delay)

    async def pause(self, exc: BotApiError, method: str) -> None:
        retry = exc.retry_after if exc.retry_after is not None else 1.0
        log.info("%s rate limited: retry after %ss (%s)", self.prefix, f"{retry:g}", method)
        self.until = max(self.until, trio.current_time() + retry + random.uniform(0, 1))
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
            result["error"] = str(exc)
    if scope.cancelled_caught:
        result["error"] = f"timed out after {int(timeout_s * 1000)}ms"
    result["elapsedMs"] = int((trio.current_time() - start) * 1000)
    return result
