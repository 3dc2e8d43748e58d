"""One run of one Telegram account: start-up, the long-poll loop, lanes, replies (CHANNELS.md 3).

    TelegramTransport.run()                  the account's run (AccountSlot's cancel scope)
    ├── poll loop (this task)                getUpdates -> ledger batch + watermark -> lanes
    └── work nursery
        ├── lane task per busy chat/topic    one message at a time, in order
        ├── album flush timers               parts of one media group become one message
        └── typing / turn tasks              (via ChannelService.process)

Start-up: resolve the token (the slot's config), ``getMe`` (401: ``failed``), drop a
webhook if one is set (polling and webhooks exclude each other), ``setMyCommands``
(best effort), load the watermark, re-dispatch the ledger rows a previous run left
unfinished, then poll.

The loop handles everything a live session meets without ending the run: 409 (another
poller; the connection pool is rebuilt and we back off 2 s -> 30 s, never restarting),
409 "webhook is active" (delete it, retry), 429 (wait ``retry_after``), network errors and
5xx (back off), stalls (rebuild the client). Only a revoked token (401/404 on
``getUpdates``) ends it, as ``failed``.
"""

from __future__ import annotations

import json
import logging
import random
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ...fsutil import write_atomic
from ..accounts import TelegramAccountConfig
from ..backoff import LoopBackoff
from ..lanes import Lanes
from ..ledger import Inbound, Offset
from ..outbox.worker import AccountWorker
from ..slot import AccountSlot, ChannelFatal
from .api import GET_UPDATES_TIMEOUT_S, READ_MARGIN_S, BotApi, BotApiError, BotNetworkError
from .inbound import Drop, Message, chat_of, merge_album, parse_update, placeholder
from .outbound import RateGate, TelegramSender, probe_account

if TYPE_CHECKING:
    from ..service import ChannelService

log = logging.getLogger("gateway.channels.telegram")

ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "channel_post",
    "callback_query",
    "message_reaction",
    "my_chat_member",
]
OFFSET_MAX_AGE_MS = 24 * 3600 * 1000
CONFLICT_TEXT = (
    "getUpdates conflict: another process is polling this bot token (other gateway/profile/"
    "script); stop it or rotate the token with @BotFather"
)
CONFLICT_WARN_EVERY_S = 600.0
HOSTED_FILE_LIMIT = 20 * 1024 * 1024
COMMANDS = [
    {"command": "new", "description": "Start a new conversation"},
    {"command": "status", "description": "Show the assistant's status"},
]


class TelegramTransport:
    def __init__(self, service: ChannelService, slot: AccountSlot) -> None:
        self.service = service
        self.slot = slot
        self.rt = service.rt
        cfg = slot.config
        assert isinstance(cfg, TelegramAccountConfig)
        assert cfg.token is not None
        # built once per run: a change to these keys restarts the account (accounts.py)
        self.api = BotApi(
            cfg.api_base_url, cfg.token, proxy=cfg.proxy, timeout_s=cfg.timeout_seconds
        )
        self.bot: dict[str, Any] = {}
        self.backoff = LoopBackoff(random.uniform)
        self._lanes = Lanes(service, slot, self._handle, log)
        self._albums: dict[tuple[str, str], list[tuple[Message, str, bool]]] = {}
        self._work: trio.Nursery | None = None
        self._last_conflict_warn: float | None = None
        # when a 409 naming a webhook last made us delete it (None after a good poll)
        self._webhook_deleted_at: float | None = None
        self.gate = RateGate(slot.prefix)  # the poll lane (sends have their own)
        self.sender = TelegramSender(self.api, slot)

    @property
    def prefix(self) -> str:
        return self.slot.prefix

    @property
    def cfg(self) -> TelegramAccountConfig:
        """The account's config as of now: policy and formatting keys apply hot."""
        cfg = self.slot.config
        assert isinstance(cfg, TelegramAccountConfig)
        return cfg

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._start()
            async with trio.open_nursery() as work:
                self._work = work
                await self._redispatch()
                self.slot.mark_running()
                work.start_soon(
                    AccountWorker(self.service.manager.outbox, self.slot, self.sender).run
                )
                log.info("%s running (bot @%s)", self.prefix, self.bot.get("username"))
                await self._poll()
                # draining: no more polling; the lanes finish what they hold
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.api.aclose()

    async def _start(self) -> None:
        try:
            me = await self.api.call("getMe")
        except BotApiError as exc:
            if exc.error_code in (401, 404):
                self.slot.linked = False
                raise ChannelFatal(
                    f"getMe returned {exc.error_code} (token rejected; update botToken/tokenFile)"
                ) from None
            raise
        if not isinstance(me, dict) or not isinstance(me.get("id"), int):
            raise BotNetworkError("getMe", "unexpected answer (no bot id)", sent=True)
        self.bot = {
            "id": me["id"],
            "username": me.get("username"),
            "canJoinGroups": me.get("can_join_groups"),
            "canReadAllGroupMessages": me.get("can_read_all_group_messages"),
            "hasTopicsEnabled": me.get("has_topics_enabled"),
        }
        self.slot.linked = True
        self.slot.extra["bot"] = {"id": me["id"], "username": me.get("username")}
        assert self.cfg.token is not None
        await self.service.note_linked(self.slot, self.cfg.token)
        try:
            info = await self.api.call("getWebhookInfo")
        except BotApiError as exc:
            if exc.error_code in (401, 404):
                raise ChannelFatal(
                    f"getWebhookInfo returned {exc.error_code} (token rejected; update "
                    "botToken/tokenFile)"
                ) from None
            raise
        url = info.get("url") if isinstance(info, dict) else None
        if url:
            log.warning("%s webhook %s is set; deleting it to use long polling", self.prefix, url)
            await self.api.call("deleteWebhook", {"drop_pending_updates": False})
        try:
            await self.api.call("setMyCommands", {"commands": COMMANDS})
        except (BotApiError, BotNetworkError) as exc:
            log.debug("%s setMyCommands failed: %s", self.prefix, exc)

    async def _load_offset(self) -> int | None:
        ledger = await self.service.open_ledger()
        stored = await ledger.load_offset("telegram", self.slot.account_id)
        if stored is None:
            return None
        bot_id = self.cfg.bot_id_from_token
        if stored.bot_id is not None and bot_id is not None and stored.bot_id != bot_id:
            log.info("%s stored offset belongs to another bot; ignoring it", self.prefix)
            return None
        if self.rt.now_ms() - stored.saved_at > OFFSET_MAX_AGE_MS:
            log.info("%s stored offset is older than 24 h; ignoring it", self.prefix)
            return None
        return stored.last_update_id + 1

    async def _redispatch(self) -> None:
        ledger = await self.service.open_ledger()
        rows = await ledger.unfinished("telegram", self.slot.account_id)
        if rows:
            log.info("%s re-dispatching %d unfinished message(s)", self.prefix, len(rows))
        for row in rows:
            try:
                update = json.loads(row.raw or "null")
            except ValueError:
                update = None
            parsed = parse_update(update, str(self.bot.get("id")))
            if isinstance(parsed, Drop):
                await ledger.mark(row.key, "dropped", parsed.reason)
                continue
            self._enqueue(parsed, row.key, fresh=False)

    # -- polling --------------------------------------------------------------------------------

    async def _poll(self) -> None:
        offset = await self._load_offset()
        stall_s = self.cfg.polling_stall_threshold_ms / 1000
        # the last time Telegram answered getUpdates at all (ok, 409, 429, 5xx): a stall is
        # a call that gets no answer, not one that gets an error
        last_ok = trio.current_time()
        while not self.service.draining:
            if self.gate.until > trio.current_time():
                await self.gate.wait()  # a 429's retry_after is no stall either
                last_ok = trio.current_time()
            params: dict[str, Any] = {
                "timeout": GET_UPDATES_TIMEOUT_S,
                "allowed_updates": ALLOWED_UPDATES,
            }
            if offset is not None:
                params["offset"] = offset
            budget = max(1.0, stall_s - (trio.current_time() - last_ok))
            updates: Any = None
            failure: BaseException | None = None
            with trio.move_on_after(budget):
                try:
                    updates = await self.api.call(
                        "getUpdates", params, timeout_s=GET_UPDATES_TIMEOUT_S + READ_MARGIN_S
                    )
                except BotApiError as exc:
                    failure = exc
                    last_ok = trio.current_time()
                except BotNetworkError as exc:
                    failure = exc
                else:
                    last_ok = trio.current_time()
            if (updates is None and failure is None) or trio.current_time() - last_ok >= stall_s:
                log.warning("%s Polling stall detected; rebuilding transport", self.prefix)
                self.rt.metrics.telegram_getupdates.labels(result="error").inc()
                await self.api.reset()
                last_ok = trio.current_time()
                continue
            if failure is not None:
                await self._poll_failed(failure)
                continue
            self.rt.metrics.telegram_getupdates.labels(result="ok").inc()
            self.backoff.reset()
            self._webhook_deleted_at = None
            self.slot.last_poll_at = self.rt.now_ms()
            if not self.slot.connected or self.slot.conflict:
                self.slot.conflict = False
                self.slot.set_connected(True)
            if isinstance(updates, list) and updates:
                offset = await self._accept(updates, offset)

    async def _poll_failed(self, exc: BaseException) -> None:
        slot = self.slot
        deleted = self._webhook_deleted_at
        retried = deleted is not None and trio.current_time() - deleted < CONFLICT_WARN_EVERY_S
        if isinstance(exc, BotApiError):
            if exc.webhook_active and not retried:
                # delete it and retry at once -- once: while that retry and the next polls
                # meet the same 409 (say "terminated by other long poll or webhook" from
                # another poller), it is a conflict, backed off below, not a tight
                # delete/poll loop; the webhook is deleted again after 10 minutes of it
                self.rt.metrics.telegram_getupdates.labels(result="conflict").inc()
                log.warning("%s a webhook is active; deleting it to use long polling", self.prefix)
                try:
                    await self.api.call("deleteWebhook", {"drop_pending_updates": False})
                    self._webhook_deleted_at = trio.current_time()
                    return
                except (BotApiError, BotNetworkError) as again:
                    exc = again if isinstance(again, BotApiError) else exc
            if exc.is_conflict:
                self.rt.metrics.telegram_getupdates.labels(result="conflict").inc()
                slot.conflict = True
                slot.set_connected(False, CONFLICT_TEXT)
                now = trio.current_time()
                if (
                    self._last_conflict_warn is None
                    or now - self._last_conflict_warn >= CONFLICT_WARN_EVERY_S
                ):
                    self._last_conflict_warn = now
                    log.warning("%s %s", self.prefix, CONFLICT_TEXT)
                await self.api.reset()
                await trio.sleep(self.backoff.next_ms() / 1000)
                return
            if exc.error_code == 429:
                self.rt.metrics.telegram_getupdates.labels(result="rate_limited").inc()
                await self.gate.pause_and_wait(exc, "getUpdates")
                return
            if exc.error_code in (401, 404):
                self.rt.metrics.telegram_getupdates.labels(result="error").inc()
                slot.linked = False
                raise ChannelFatal(
                    f"getUpdates returned {exc.error_code} (token revoked or rejected; "
                    "update botToken/tokenFile)"
                )
        self.rt.metrics.telegram_getupdates.labels(result="error").inc()
        slot.set_connected(False, f"getUpdates failed: {exc}")
        delay = self.backoff.next_ms() / 1000
        log.info("%s getUpdates failed (%s); retrying in %.1fs", self.prefix, exc, delay)
        await trio.sleep(delay)

    async def _accept(self, updates: list[Any], offset: int | None) -> int | None:
        """Record the batch and the new watermark in one transaction, then hand it on."""
        ids: list[int] = [
            u["update_id"]
            for u in updates
            if isinstance(u, dict)
            and isinstance(u.get("update_id"), int)
            and not isinstance(u.get("update_id"), bool)
        ]
        if not ids:
            return offset
        last = max(ids)
        now = self.rt.now_ms()
        account = self.slot.account_id
        rows: list[Inbound] = []
        parsed: list[tuple[str, Message]] = []
        bot_id = str(self.bot.get("id"))
        for update in updates:
            result = parse_update(update, bot_id)
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if not isinstance(update_id, int):
                continue  # no key to record it under; the watermark still passes it
            key = f"tg:{account}:{update_id}"
            raw = json.dumps(update, ensure_ascii=True, separators=(",", ":"))
            if isinstance(result, Drop):
                rows.append(
                    Inbound(
                        key,
                        "telegram",
                        account,
                        chat_of(update),
                        now,
                        raw,
                        "dropped",
                        result.reason,
                    )
                )
            else:
                rows.append(Inbound(key, "telegram", account, result.chat_id, now, raw))
                parsed.append((key, result))
        ledger = await self.service.open_ledger()
        fresh = set(
            await ledger.record_batch(
                "telegram",
                account,
                rows,
                Offset(last, self.cfg.bot_id_from_token or bot_id, now),
            )
        )
        self.service.marked()
        metrics = self.rt.metrics
        for row in rows:
            if row.key not in fresh:
                metrics.inbound_messages.labels(channel="telegram", result="duplicate").inc()
            elif row.state == "dropped":
                metrics.inbound_messages.labels(channel="telegram", result="dropped").inc()
                log.info("%s dropped update %s: %s", self.prefix, row.key, row.reason)
            else:
                metrics.inbound_messages.labels(channel="telegram", result="accepted").inc()
        for key, msg in parsed:
            if key in fresh:
                self._enqueue(msg, key)
        return last + 1

    # -- lanes ----------------------------------------------------------------------------------

    def _enqueue(self, msg: Message, key: str, *, fresh: bool = True) -> None:
        if msg.media_group_id is not None:
            album = (msg.chat_id, msg.media_group_id)
            parts = self._albums.setdefault(album, [])
            parts.append((msg, key, fresh))
            if len(parts) == 1:
                assert self._work is not None
                self._work.start_soon(self._flush_album, album)
            return
        self._lane_put(msg, [key], fresh)

    async def _flush_album(self, album: tuple[str, str]) -> None:
        await trio.sleep(self.cfg.media_group_flush_ms / 1000)
        parts = self._albums.pop(album, [])
        if parts:
            merged = merge_album([m for m, _, _ in parts])
            self._lane_put(merged, [k for _, k, _ in parts], all(f for _, _, f in parts))

    def _lane_put(self, msg: Message, keys: list[str], fresh: bool) -> None:
        assert self._work is not None
        self._lanes.put(self._work, msg, keys, fresh)

    async def _handle(self, msg: Message, keys: list[str], fresh: bool) -> None:
        """One message, in its lane (:mod:`gateway.channels.lanes`)."""
        notes = await self._media_notes(msg)
        await self.service.process(self.slot, self.sender, msg, keys, notes, fresh=fresh)

    async def _media_notes(self, msg: Message) -> list[str]:
        notes: list[str] = []
        max_bytes = min(self.cfg.media_max_mb * 1024 * 1024, HOSTED_FILE_LIMIT)
        for i, media in enumerate(msg.media):
            tag = placeholder(media)
            if media.file_size is not None and media.file_size > max_bytes:
                notes.append(f"{tag} (file too large to download: {media.file_size} bytes)")
                continue
            try:
                info = await self.api.call("getFile", {"file_id": media.file_id})
                file_path = info.get("file_path") if isinstance(info, dict) else None
                if not isinstance(file_path, str):
                    raise BotNetworkError("getFile", "no file_path in the answer", sent=True)
                data = await self.api.download(file_path, max_bytes)
                suffix = Path(file_path).suffix[:10]
                name = f"tg-{self.slot.account_id}-{msg.chat_id}-{msg.message_id}-{i}{suffix}"
                target = self.rt.settings.paths.state_dir / "media" / "inbound" / name
                await trio.to_thread.run_sync(partial(write_atomic, target, data, secret=True))
                notes.append(f"{tag} (saved to {target})")
            except (BotApiError, BotNetworkError, OSError) as exc:
                log.info("%s media download failed: %s", self.prefix, exc)
                notes.append(f"{tag} (download failed)")
        return notes

    # -- probe ----------------------------------------------------------------------------------

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        return await probe_account(self.api, timeout_s)
