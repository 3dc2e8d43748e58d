"""One run of one WhatsApp Cloud API account (CHANNELS.md 4).

    WhatsAppTransport.run()                  the account's run (AccountSlot's cancel scope)
    └── work nursery
        ├── AccountWorker.run                the account's outbox (Graph API sends)
        ├── probe loop                       the phone-number GET every 10 min
        ├── lane task per busy chat          one message at a time, in order
        └── status tasks                     delivery statuses -> the outbox

Start-up: probe the number (``GET /<ver>/<phoneNumberId>``): a rejected token (HTTP 401 or
Graph 190) is ``failed`` and the account is not linked; a network error backs off. Then the
ledger rows a previous run (or the webhook, while the account was stopped) left unfinished
are dispatched, oldest first, and the account is ``running``. The webhook route hands new
rows to :meth:`accept`. A token rejected later -- by the probe or by a send -- ends the run
as ``failed``; the outbox keeps what it could not send.
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ...fsutil import write_atomic
from ..lanes import Lanes
from ..ledger import Inbound
from ..outbox.worker import AccountWorker
from ..slot import AccountSlot, ChannelFatal
from ..telegram.inbound import Drop, Message, placeholder
from .api import GraphApi, GraphError, GraphNetworkError, probe_number
from .config import WhatsAppAccountConfig
from .inbound import is_status, message_of, status_of
from .outbound import WhatsAppSender

if TYPE_CHECKING:
    from ..service import ChannelService

log = logging.getLogger("gateway.channels.whatsapp")

PROBE_EVERY_S = 600.0
MEDIA_MAX_BYTES = 100 * 1024 * 1024


class WhatsAppTransport:
    def __init__(self, service: ChannelService, slot: AccountSlot) -> None:
        self.service = service
        self.slot = slot
        self.rt = service.rt
        cfg = slot.config
        assert isinstance(cfg, WhatsAppAccountConfig)
        self.api = GraphApi(cfg)
        self.sender = WhatsAppSender(
            self.api,
            slot,
            lambda: self.rt.settings.config.outbox.ambiguous_grace_ms,
            self._auth_failed,
        )
        self._lanes = Lanes(service, slot, self._handle, log)
        self._work: trio.Nursery | None = None
        self._fatal: str | None = None
        self._fatal_event = trio.Event()

    @property
    def prefix(self) -> str:
        return self.slot.prefix

    @property
    def cfg(self) -> WhatsAppAccountConfig:
        cfg = self.slot.config
        assert isinstance(cfg, WhatsAppAccountConfig)
        return cfg

    def _auth_failed(self, error: str) -> None:
        self.slot.linked = False
        self._fatal = f"Graph API rejected the access token ({error}); update accessToken"
        self._fatal_event.set()

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._probe_or_fail()
            async with trio.open_nursery() as work:
                self._work = work
                await self._redispatch()
                self.slot.mark_running()
                log.info("%s running (phone %s)", self.prefix, self.slot.extra.get("phoneNumber"))
                work.start_soon(
                    AccountWorker(self.service.manager.outbox, self.slot, self.sender).run
                )
                work.start_soon(self._probe_loop)
                await self._fatal_event.wait()
                raise ChannelFatal(self._fatal or "access token rejected")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.api.aclose()

    async def _probe_or_fail(self) -> None:
        result = await probe_number(self.api, self.api.timeout_s)
        self.slot.probe_result = result
        self.slot.last_probe_at = self.rt.now_ms()
        if result.get("ok"):
            self.slot.linked = True
            phone = result.get("phone") or {}
            self.slot.extra["phoneNumber"] = phone.get("displayPhoneNumber")
            self.slot.extra["verifiedName"] = phone.get("verifiedName")
            assert self.cfg.token is not None
            await self.service.note_linked(self.slot, self.cfg.token)
            return
        if result.get("status") == 401 or result.get("code") == 190:
            self.slot.linked = False
            raise ChannelFatal(
                f"phone number probe rejected the access token: {result.get('error')} "
                "(update accessToken)"
            )
        raise GraphNetworkError(f"phone number probe failed: {result.get('error')}", sent=False)

    async def _probe_loop(self) -> None:
        while True:
            await trio.sleep(PROBE_EVERY_S)
            try:
                await self._probe_or_fail()
            except ChannelFatal as exc:
                self._fatal = str(exc)
                self._fatal_event.set()
                return
            except GraphNetworkError as exc:
                self.slot.set_connected(False, str(exc))
                continue
            if not self.slot.connected:
                self.slot.set_connected(True)

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        return await probe_number(self.api, timeout_s)

    # -- inbound --------------------------------------------------------------------------------

    async def _redispatch(self) -> None:
        ledger = await self.service.open_ledger()
        rows = await ledger.unfinished("whatsapp", self.slot.account_id)
        if rows:
            log.info("%s dispatching %d unfinished webhook row(s)", self.prefix, len(rows))
        self._dispatch(rows, fresh=False)

    def accept(self, rows: list[Inbound]) -> None:
        """New rows from the webhook (already committed)."""
        if self._work is not None and not self.service.draining:
            self._dispatch(rows, fresh=True)

    def _dispatch(self, rows: list[Inbound], *, fresh: bool) -> None:
        assert self._work is not None
        for row in rows:
            if is_status(row):
                self._work.start_soon(self._status, row)
                continue
            parsed = message_of(row)
            if isinstance(parsed, Drop):
                self._work.start_soon(self.service.finish, [row.key], "dropped", parsed.reason)
                continue
            self.slot.last_inbound_at = self.rt.now_ms()
            self._lanes.put(self._work, parsed, [row.key], fresh)

    async def _status(self, row: Inbound) -> None:
        status = status_of(row)
        if status is not None and status.status in ("sent", "delivered", "read", "failed"):
            window = status.error_code == 131047
            await self.service.manager.outbox.apply_status(
                opaque=status.opaque,
                platform_id=status.platform_id,
                status=status.status,
                error=(
                    f"{status.error} -- more than 24 h since this user's last message: they "
                    "have to write first"
                    if window
                    else status.error
                ),
                error_class="permanent",
                error_code="UNAVAILABLE",
            )
        await self.service.finish([row.key], "done", f"status {status.status}" if status else None)

    async def _handle(self, msg: Message, keys: list[str], fresh: bool) -> None:
        """One message, in its lane (:mod:`gateway.channels.lanes`)."""
        if fresh and self.cfg.send_read_receipts:
            self._work.start_soon(self._read, str(msg.message_id))  # type: ignore[union-attr]
        notes = await self._media_notes(msg)
        await self.service.process(self.slot, self.sender, msg, keys, notes, fresh=fresh)

    async def _read(self, message_id: str) -> None:
        try:
            await self.sender.mark_read(message_id)
        except (GraphError, GraphNetworkError) as exc:
            log.debug("%s read receipt failed: %s", self.prefix, exc)

    async def _media_notes(self, msg: Message) -> list[str]:
        notes: list[str] = []
        for i, media in enumerate(msg.media):
            tag = placeholder(media)
            try:
                data, mime = await self.api.download(media.file_id, MEDIA_MAX_BYTES)
                suffix = {
                    "image/jpeg": ".jpg",
                    "image/png": ".png",
                    "image/webp": ".webp",
                    "audio/ogg": ".ogg",
                    "video/mp4": ".mp4",
                    "application/pdf": ".pdf",
                }.get(mime or media.mime_type or "", "")
                digest = hashlib.sha256(str(msg.message_id).encode()).hexdigest()[:16]
                name = f"wa-{self.slot.account_id}-{msg.chat_id}-{digest}-{i}{suffix}"
                target = self.rt.settings.paths.state_dir / "media" / "inbound" / name
                await trio.to_thread.run_sync(partial(write_atomic, target, data, secret=True))
                notes.append(f"{tag} (saved to {target})")
            except (GraphError, GraphNetworkError, OSError) as exc:
                log.info("%s media download failed: %s", self.prefix, exc)
                notes.append(f"{tag} (download failed)")
        return notes
