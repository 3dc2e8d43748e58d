"""The channel supervisor: the ``channels`` nursery with one :class:`AccountSlot` per
``(channel, accountId)`` (CHANNELS.md 2).

    ChannelManager.run()                     the ``channels`` nursery under serve()
    └── AccountSlot.loop, per account        slot.py: run, back off, wait -- forever

The manager owns what spans accounts: the crash-loop breaker (``breaker.py``) and
SMART_AGENT_NEO_SKIP_CHANNELS at start, at most 4 accounts starting at once, hot reload
(``apply_config``: only the accounts whose connection keys changed restart), live probes,
and the data behind ``channels.status``, the ``health`` block, ``linkChannel`` and
``/readyz`` (``views.py`` formats it).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from . import backoff
from .accounts import TelegramAccountConfig, plan_accounts, resolve_telegram
from .breaker import BootHistory
from .pairing import PairingStore
from .slot import ENV_SKIP_CHANNELS, AccountSlot, Transport, TransportFactory, wall_ms

if TYPE_CHECKING:
    from ..protocol.system import HealthSummary
    from ..runtime import Runtime
    from .outbox import Outbox
    from .service import ChannelService
    from .slot import AccountConfig

log = logging.getLogger("gateway.channels")

MAX_CONCURRENT_STARTS = 4
LEDGER_PRUNE_EVERY_S = 3600.0
CHANNEL_LABELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}
CHANNEL_ORDER = ("telegram", "whatsapp")


class ChannelManager:
    """All channel accounts of one Runtime (``rt.channels``)."""

    def __init__(
        self,
        rt: Runtime,
        *,
        env: Mapping[str, str] | None = None,
        factory: TransportFactory | None = None,
        uniform: backoff.Uniform = random.uniform,
    ) -> None:
        self.rt = rt
        self.env = os.environ if env is None else env
        self.uniform = uniform
        self.slots: dict[tuple[str, str], AccountSlot] = {}
        self.start_limiter = trio.CapacityLimiter(MAX_CONCURRENT_STARTS)
        # chat lanes processed at once, across accounts (agents.defaults.maxConcurrent)
        self.lane_limiter = trio.CapacityLimiter(rt.settings.config.agents.defaults.max_concurrent)
        self.nursery: trio.Nursery | None = None
        self._service: ChannelService | None = None
        self._outbox: Outbox | None = None
        self._factory = factory
        self.accounts: dict[str, dict[str, AccountConfig]] = {}  # channel -> account -> config
        self.started = False
        self._changed = trio.Event()

    @property
    def outbox(self) -> Outbox:
        """The durable outbox (``channels/outbox/``): made on first use -- an account's
        worker, a ``send`` -- and its hourly upkeep starts with it, so a gateway that never
        uses a channel never loads it (a database left from earlier is pruned once a
        channel is used again)."""
        if self._outbox is None:
            from .outbox import Outbox

            self._outbox = Outbox(self)
            self._start_upkeep()
        return self._outbox

    @property
    def outbox_if_made(self) -> Outbox | None:
        """The outbox if something has used it, without making it (a ``/metrics`` scrape
        must not load SQLite into a gateway that never uses a channel)."""
        return self._outbox

    def _start_upkeep(self) -> None:
        if self._outbox is not None and self.nursery is not None:
            try:
                self.nursery.start_soon(self._outbox.prune_loop)
            except RuntimeError:  # the channels nursery has closed: stopping
                pass

    @property
    def service(self) -> ChannelService | None:
        """The channel service (ledger, pairing store, routes): made on first use once
        :meth:`run` has started, so a gateway without channels never loads or opens it;
        ``None`` before that."""
        if self._service is None and self.nursery is not None:
            from .service import ChannelService

            self._service = ChannelService(self)
        return self._service

    # -- wiring ----------------------------------------------------------------------------------

    def factory(self, slot: AccountSlot) -> Transport:
        if self._factory is not None:
            return self._factory(slot)
        assert self.service is not None
        if slot.channel == "whatsapp":
            from .whatsapp.transport import WhatsAppTransport

            return WhatsAppTransport(self.service, slot)
        from .telegram.transport import TelegramTransport

        return TelegramTransport(self.service, slot)

    def resolve(self) -> dict[str, dict[str, AccountConfig]]:
        """Every configured account of every channel, resolved from the config now."""
        from .whatsapp.config import resolve_whatsapp

        config = self.rt.settings.config
        return {
            "telegram": dict(resolve_telegram(config, self.env)),
            "whatsapp": dict(resolve_whatsapp(config, self.env)),
        }

    def describe(self, exc: BaseException) -> str:
        from .telegram.api import describe_error

        return describe_error(exc)

    def changed(self) -> None:
        self.rt.channels_changed()
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds, re-checked on every account state change."""
        while not predicate():
            await self._changed.wait()

    def state_changed(self, slot: AccountSlot) -> None:
        self.changed()

    # -- life ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``channels`` nursery. Reports started once every account has its slot.

        With no account configured it holds nothing but this task: the channel service
        and the outbox are made when first used (:attr:`service`, :attr:`outbox`)."""
        rt = self.rt
        process = rt.process
        if process.boot_history is None:
            history = BootHistory(rt.settings.paths.state_dir)
            tripped = await trio.to_thread.run_sync(history.record_boot, rt.now_ms())
            process.boot_history = history
        else:
            history = process.boot_history
            tripped = history.tripped
        skip = self.env.get(ENV_SKIP_CHANNELS, "").strip().lower() in ("1", "true", "yes")
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.accounts = self.resolve()
                for channel, accounts in self.accounts.items():
                    for acct in accounts.values():
                        self._add(channel, acct, breaker=tripped, skipped=skip)
                if tripped and self.slots:
                    for channel in sorted({c for c, _ in self.slots}):
                        log.warning(
                            "channel autostart suppressed by crash-loop breaker; refusing "
                            "automatic start for %s. Start a channel manually with: "
                            "smart-agent-neo gateway call channels.start --params "
                            '\'{"channel":"%s"}\'',
                            channel,
                            channel,
                        )
                    nursery.start_soon(self._lift_breaker, history)
                self._start_upkeep()  # an outbox made before run() (else: when made)
                nursery.start_soon(self._ledger_upkeep)
                self.started = True
                task_status.started()
                await trio.sleep_forever()
        finally:
            if self._service is not None:
                with trio.CancelScope(shield=True):
                    await self._service.close()

    async def _ledger_upkeep(self) -> None:
        """Hourly: final inbound rows older than 7 days go (CHANNELS.md 6.5) -- not only at
        start-up, so a gateway that runs for months keeps a bounded ledger."""
        while True:
            await trio.sleep(LEDGER_PRUNE_EVERY_S)
            service = self._service
            if service is None or service.ledger is None:
                continue  # never opened: nothing to prune
            try:
                pruned = await service.ledger.prune(self.rt.now_ms())
            except Exception as exc:  # a full disk, a locked file: next hour
                log.warning("inbound ledger prune failed: %s", exc)
                continue
            if pruned:
                log.info("inbound ledger: pruned %d final row(s) older than 7 days", pruned)

    async def _lift_breaker(self, history: BootHistory) -> None:
        from .breaker import LIFT_AFTER_MS

        await trio.sleep(LIFT_AFTER_MS / 1000)
        await trio.to_thread.run_sync(history.mark_lifted)
        log.info("crash-loop breaker lifted after 15 min of clean uptime; starting channels")
        for slot in self.slots.values():
            if slot.breaker:
                slot.breaker = False
                slot.stop_reason = None
                slot.wake()

    def _add(
        self, channel: str, acct: AccountConfig, *, breaker: bool, skipped: bool
    ) -> AccountSlot:
        assert self.nursery is not None
        slot = AccountSlot(channel, acct.account_id, acct, self)
        slot.breaker = breaker
        slot.skipped = skipped
        self.slots[slot.key] = slot
        self.nursery.start_soon(slot.loop, name=f"channel {channel}:{acct.account_id}")
        return slot

    def apply_config(self) -> None:
        """Hot reload: diff the accounts and restart only what changed (CHANNELS.md 1.3)."""
        if self.nursery is None:
            return
        self.lane_limiter.total_tokens = self.rt.settings.config.agents.defaults.max_concurrent
        fresh = self.resolve()
        changed = False
        for channel, new in fresh.items():
            old = self.accounts.get(channel, {})
            actions = plan_accounts(old, new)
            changed = changed or bool(actions)
            for account_id, action in actions.items():
                key = (channel, account_id)
                slot = self.slots.get(key)
                if action == "start" or slot is None:
                    if account_id in new:
                        log.info("[%s:%s] account added", channel, account_id)
                        self._add(channel, new[account_id], breaker=False, skipped=False)
                    continue
                if action == "stop":
                    log.info("[%s:%s] account removed; stopping", channel, account_id)
                    self.nursery.start_soon(self._remove, slot)
                    continue
                slot.config = new[account_id]
                if action == "restart":
                    log.info("[%s:%s] connection settings changed; restarting", channel, account_id)
                    slot.manual_stop = False
                    slot.restart_run()
                # "hot": the next message reads slot.config
        self.accounts = fresh
        if changed:
            self.changed()

    def reread_tokens(self, slots: list[AccountSlot]) -> None:
        """Resolve ``slots``' accounts again (a rotated ``tokenFile``, a new token in the
        environment) before a manual start or restart, which then uses what is on disk
        now. Other accounts keep theirs until they restart."""
        fresh = self.resolve()
        for slot in slots:
            config = fresh.get(slot.channel, {}).get(slot.account_id)
            if config is not None:
                slot.config = config
                self.accounts.setdefault(slot.channel, {})[slot.account_id] = config

    async def _remove(self, slot: AccountSlot) -> None:
        slot.removed = True
        await slot.stop("removed")
        with trio.move_on_after(backoff.STOP_WAIT_MS / 1000):
            await slot._loop_done.wait()
        if self.slots.get(slot.key) is slot:
            del self.slots[slot.key]
        self.changed()

    async def drain(self) -> None:
        """Drain hook: stop taking new messages; let in-flight turns finish and their
        replies go out (what is not out when the budget ends stays in the outbox)."""
        if self._service is not None:  # never made: nothing to drain
            await self._service.drain()
        if self._outbox is not None:
            await self._outbox.wait_idle()

    async def stop_all(self, reason: str = "shutdown") -> None:
        async with trio.open_nursery() as nursery:
            for slot in list(self.slots.values()):
                nursery.start_soon(slot.stop, reason)

    # -- lookups ---------------------------------------------------------------------------------

    def select(self, channel: str, account_id: str | None) -> list[AccountSlot]:
        return [
            s
            for (c, a), s in sorted(self.slots.items())
            if c == channel and (account_id is None or a == account_id)
        ]

    def default_account(self, channel: str) -> str | None:
        from .accounts import default_account_id

        channels = self.rt.settings.config.channels
        if channel == "telegram" and channels.telegram is not None:
            return default_account_id(channels.telegram)
        if channel == "whatsapp" and channels.whatsapp is not None:
            return default_account_id(channels.whatsapp)
        return None

    def configured_channels(self) -> list[str]:
        return [c for c in CHANNEL_ORDER if any(k[0] == c for k in self.slots)]

    # -- views -----------------------------------------------------------------------------------

    def snapshots(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for (channel, _), slot in sorted(self.slots.items()):
            out.setdefault(channel, []).append(slot.snapshot())
        return out

    def defaults(self) -> dict[str, str]:
        out = {}
        for channel in self.configured_channels():
            default = self.default_account(channel)
            if default is not None:
                out[channel] = default
        return out

    async def probe_all(self, timeout_s: float) -> None:
        """Live probes of every configured account, concurrently, within ``timeout_s``."""

        async def one(slot: AccountSlot) -> None:
            cfg = slot.config
            if not cfg.configured or cfg.token is None:
                return
            if isinstance(cfg, TelegramAccountConfig):
                result = await _probe_telegram(cfg, timeout_s)
            else:
                from .whatsapp.api import GraphApi, probe_number

                api = GraphApi(cfg, timeout_s=timeout_s)
                try:
                    result = await probe_number(api, timeout_s)
                finally:
                    with trio.CancelScope(shield=True):
                        await api.aclose()
            slot.probe_result = result
            slot.last_probe_at = wall_ms()
            if result.get("status") == 401 or result.get("code") == 190:
                slot.linked = False
            elif result.get("ok"):
                slot.linked = True
                if result.get("bot"):
                    slot.extra["bot"] = {
                        "id": result["bot"].get("id"),
                        "username": result["bot"].get("username"),
                    }
                if result.get("phone"):
                    slot.extra["phoneNumber"] = result["phone"].get("displayPhoneNumber")

        async with trio.open_nursery() as nursery:
            for slot in list(self.slots.values()):
                nursery.start_soon(one, slot)

    def pairing_store(self, channel: str) -> PairingStore:
        if self._service is not None:
            return self._service.pairing_store(channel)
        return PairingStore(self.rt.settings.paths.state_dir, channel)

    async def notify(
        self, channel: str, account_id: str, chat_id: str, text: str, key: str
    ) -> bool:
        """Tell someone something through the outbox (``key`` dedupes it); ``True`` once it
        is sent or queued for an account that can send, ``False`` if it cannot go out."""
        from ..errors import GatewayError
        from .delivery import Destination, new_record, parse_target
        from .outbox.model import Payload

        slot = self.slots.get((channel, account_id))
        if slot is None or not slot.config.configured or self.service is None:
            return False
        try:  # a WhatsApp sender is "+<digits>"; the Graph API wants the digits
            target = parse_target(channel, chat_id)
        except GatewayError as exc:
            log.warning("%s notify %s: %s", slot.prefix, chat_id, exc.message)
            return False
        record = new_record(
            self, Destination(channel, account_id, target), key, "notify", Payload(text)
        )
        [(written, _)] = await self.outbox.enqueue([record])
        wait_s = self.rt.settings.config.send.ack_wait_ms / 1000
        written = await self.outbox.wait_attempted(written, wait_s)
        if written.state in ("failed", "partial_failed", "expired", "cancelled"):
            log.warning("%s notify %s failed: %s", slot.prefix, chat_id, written.last_error)
            return False
        return True

    def add_to_health(self, snapshot: HealthSummary) -> HealthSummary:
        """``snapshot`` with the channels block, order, labels and ``linkChannel``."""
        from ..protocol.codec import from_wire
        from ..protocol.system import LinkChannel
        from .views import health_channels, link_channel, order

        if not self.slots:
            return snapshot
        snaps, defaults = self.snapshots(), self.defaults()
        link = link_channel(snaps, defaults, self.rt.settings.config.channels.primary)
        ids = order(list(snaps))
        return attrs.evolve(
            snapshot,
            channels=health_channels(snaps, defaults),
            channel_order=ids,
            channel_labels={c: CHANNEL_LABELS.get(c, c) for c in ids},
            link_channel=from_wire(LinkChannel, link) if link is not None else None,
            delivery_queues=self.delivery_queues(),
        )

    def delivery_queues(self) -> dict[str, Any]:
        """``health.deliveryQueues``: the metrics of CHANNELS.md 7.3 under their Prometheus
        names (without the exporter's prefix), so a client needs no ``/metrics`` scrape:
        counters as ``[{<labels>, value}]``, the outbox's depth and oldest age as numbers."""
        m = self.rt.metrics

        def samples(counter: Any) -> list[dict[str, Any]]:
            return [
                {**sample.labels, "value": sample.value}
                for family in counter.collect()
                for sample in family.samples
                if sample.name.endswith("_total")
            ]

        pending, oldest = 0, None
        if self._outbox is not None:  # never made: nothing is queued
            stats = list(self._outbox.stats.values())
            pending = sum(s.pending for s in stats)
            ages = [s.oldest_pending_at for s in stats if s.oldest_pending_at is not None]
            oldest = min(ages) if ages else None
        return {
            "channel_account_state": [
                {"channel": s.channel, "account": s.account_id, "state": s.state}
                for _, s in sorted(self.slots.items())
            ],
            "channel_restarts_total": samples(m.channel_restarts),
            "telegram_getupdates_total": samples(m.telegram_getupdates),
            "inbound_messages_total": samples(m.inbound_messages),
            "outbox_pending": pending,
            "outbox_oldest_pending_age_seconds": (
                max(0.0, (wall_ms() - oldest) / 1000) if oldest is not None else 0.0
            ),
            "outbox_sends_total": samples(m.outbox_sends),
            "whatsapp_webhook_requests_total": samples(m.whatsapp_webhook_requests),
        }

    def readiness(self) -> list[dict[str, Any]]:
        from .views import readiness_failures

        config = self.rt.settings.config
        since = {k: s.backoff_since for k, s in self.slots.items() if s.backoff_since is not None}
        return readiness_failures(
            self.snapshots(),
            self.defaults(),
            config.channels.primary,
            wall_ms(),
            config.readiness.channel_grace_ms,
            since,
        )


async def _probe_telegram(cfg: TelegramAccountConfig, timeout_s: float) -> dict[str, Any]:
    from .telegram.api import BotApi
    from .telegram.outbound import probe_account

    assert cfg.token is not None
    api = BotApi(cfg.api_base_url, cfg.token, proxy=cfg.proxy, timeout_s=timeout_s)
    try:
        return await probe_account(api, timeout_s)
    finally:
        with trio.CancelScope(shield=True):
            await api.aclose()
