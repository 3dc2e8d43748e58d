"""The channel supervisor: one task per ``(channel, accountId)``, retried forever.

    ChannelManager.run()                      the ``channels`` nursery under serve()
    └── AccountSlot.loop, per account        decides: run, back off, wait; never exits early
        └── transport.run()                  one run at a time, in the slot's own cancel scope

Why a loop per account instead of a task per attempt: **one runner per account, always**.
A restart cancels the run's scope and the *same* loop starts the next run only after the
old one has returned -- so two pollers on one token can never overlap (the reference
started the new poller first and caused its own 409s). Exceptions stop at the slot: a
crashing transport puts its account in ``backoff`` and leaves everything else alone.

States (CHANNELS.md 2.2): ``disabled`` (``enabled:false`` / no token), ``stopped``
(manual, shutdown, crash-loop breaker, SMART_AGENT_NEO_SKIP_CHANNELS), ``starting``,
``running``, ``backoff`` (after a transient failure; 5 s doubling to 5 min, no cap),
``failed`` (token rejected, bad config: retried slowly, every 10 min), and ``stopping``
while a stop waits for a run that has not yet exited.

A transport reports through its slot: :meth:`AccountSlot.mark_running`, ``connected``,
``conflict``, ``last_error``, the in/out timestamps. Fatal setup errors raise
:class:`ChannelFatal`; anything else is transient.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import trio

from . import backoff
from .accounts import TelegramAccountConfig, plan_accounts, resolve_telegram
from .breaker import BootHistory
from .pairing import PairingStore

if TYPE_CHECKING:
    from ..protocol.system import HealthSummary
    from ..runtime import Runtime
    from .service import ChannelService

log = logging.getLogger("gateway.channels")

ENV_SKIP_CHANNELS = "SMART_AGENT_NEO_SKIP_CHANNELS"
MAX_CONCURRENT_STARTS = 4
State = Literal["disabled", "stopped", "stopping", "starting", "running", "backoff", "failed"]
CHANNEL_LABELS = {"telegram": "Telegram", "whatsapp": "WhatsApp"}
CHANNEL_ORDER = ("telegram", "whatsapp")


class ChannelFatal(Exception):
    """A setup failure that retrying will not fix (token rejected, bad config): ``failed``."""


class Transport(Protocol):
    async def run(self) -> None:
        """Run until cancelled. Return or raise only when the account can no longer work."""

    async def probe(self, timeout_s: float) -> dict[str, Any]: ...


TransportFactory = Callable[["AccountSlot"], Transport]


def innermost(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: what the log should name."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        fatal = [e for e in exc.exceptions if isinstance(innermost(e), ChannelFatal)]
        exc = fatal[0] if fatal else exc.exceptions[0]
    return exc


def wall_ms() -> int:
    import time

    return int(time.time() * 1000)


@attrs.define(eq=False)
class AccountSlot:
    channel: str
    account_id: str
    config: TelegramAccountConfig
    manager: ChannelManager
    state: State = "stopped"
    stop_reason: str | None = None
    last_error: str | None = None
    reconnect_attempts: int = 0
    next_retry_at: int | None = None
    last_start_at: int | None = None
    last_stop_at: int | None = None
    last_connected_at: int | None = None
    last_inbound_at: int | None = None
    last_outbound_at: int | None = None
    last_probe_at: int | None = None
    last_poll_at: int | None = None
    probe_result: dict[str, Any] | None = None
    connected: bool = False
    conflict: bool = False
    linked: bool | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)  # transport facts: bot, mode, ...
    restarts: int = 0
    # control
    manual_stop: bool = False
    breaker: bool = False
    skipped: bool = False
    removed: bool = False
    restart_pending: bool = False
    transport: Transport | None = None
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _idle: trio.Event = attrs.field(factory=trio.Event)
    _run_scope: trio.CancelScope | None = None
    _running_since: float | None = None
    _start_token: object | None = None
    _loop_done: trio.Event = attrs.field(factory=trio.Event)
    linked_at: int | None = None  # when this token first probed OK (links table)
    backoff_since: int | None = None

    def __attrs_post_init__(self) -> None:
        self._idle.set()

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.account_id)

    @property
    def prefix(self) -> str:
        return f"[{self.channel}:{self.account_id}]"

    # -- reported by the transport -----------------------------------------------------------

    def mark_running(self) -> None:
        self._set_state("running")
        self._running_since = trio.current_time()
        self.connected = True
        self.last_connected_at = wall_ms()
        self.last_error = None
        self.next_retry_at = None
        self._release_start()

    def set_connected(self, connected: bool, error: str | None = None) -> None:
        changed = connected != self.connected
        self.connected = connected
        if connected:
            self.last_connected_at = wall_ms()
            self.conflict = False
        if error is not None or connected:
            self.last_error = error
        if changed:
            self.manager.changed()

    def _release_start(self) -> None:
        if self._start_token is not None:
            self.manager.start_limiter.release_on_behalf_of(self._start_token)
            self._start_token = None

    # -- state -------------------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if state != self.state:
            if state == "backoff" and self.backoff_since is None:
                self.backoff_since = wall_ms()
            elif state in ("running", "stopped", "disabled"):
                self.backoff_since = None
            self.state = state
            self.manager.state_changed(self)

    def should_run(self) -> bool:
        return (
            not self.removed
            and self.config.enabled
            and self.config.configured
            and not self.manual_stop
            and not self.breaker
            and not self.skipped
        )

    def wake(self) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float | None) -> None:
        """Until woken (start, config change) or ``seconds`` pass."""
        if seconds is None:
            await self._wake.wait()
        else:
            with trio.move_on_after(max(0.0, seconds)):
                await self._wake.wait()

    def _idle_state(self) -> None:
        cfg = self.config
        if self.removed:
            return
        if not cfg.enabled:
            self._set_state("disabled")
            self.last_error = "disabled"
        elif cfg.token_error is not None:
            self._set_state("failed")
            self.last_error = cfg.token_error
        elif not cfg.configured:
            self._set_state("disabled")
            self.last_error = (
                f'Telegram bot token missing for account "{self.account_id}" (set '
                f"channels.telegram.accounts.{self.account_id}.botToken/tokenFile or "
                "TELEGRAM_BOT_TOKEN for default)."
            )
        else:
            self._set_state("stopped")
            if self.breaker:
                self.stop_reason = "crash-loop-breaker"
            elif self.skipped:
                self.stop_reason = "skipped"
                self.last_error = f"auto-start skipped ({ENV_SKIP_CHANNELS}=1)"
            elif self.manual_stop:
                self.stop_reason = self.stop_reason or "manual"

    async def loop(self) -> None:
        """The account's whole life. Cancellation: only by the manager (shutdown/removal)."""
        try:
            while not self.removed:
                self._wake = trio.Event()
                if not self.should_run():
                    self._idle_state()
                    await self._sleep(None)
                    continue
                await self._run_once()
        finally:
            self._loop_done.set()

    async def _run_once(self) -> None:
        mgr = self.manager
        self.stop_reason = None
        self._set_state("starting")
        self.last_start_at = wall_ms()
        self.connected = False
        self._idle = trio.Event()
        fatal: str | None = None
        error: str | None = None
        try:
            with trio.CancelScope() as scope:
                self._run_scope = scope
                token = object()
                await mgr.start_limiter.acquire_on_behalf_of(token)
                self._start_token = token
                log.info("%s starting (mode:%s)", self.prefix, "polling")
                self.transport = mgr.factory(self)
                await self.transport.run()
                if mgr.service is not None and mgr.service.draining:
                    self.manual_stop, self.stop_reason = True, "shutdown"
                else:
                    error = "transport exited"
        except Exception as exc:
            leaf = innermost(exc)
            if isinstance(leaf, ChannelFatal):
                fatal = str(leaf)
            else:
                error = mgr.describe(leaf)
                log.debug("%s run failed", self.prefix, exc_info=True)
        finally:
            self._release_start()
            self._run_scope = None
            self.transport = None
            self.connected = False
            self.last_stop_at = wall_ms()
            ran_for = (
                trio.current_time() - self._running_since
                if self._running_since is not None
                else 0.0
            )
            self._running_since = None
            self._idle.set()
        if error is None and fatal is None:
            return  # stopped, restarted or drained on purpose: the loop decides what is next
        if fatal is not None:
            self.last_error = fatal
            self._set_state("failed")
            log.warning("%s channel exited: %s", self.prefix, fatal)
            self.next_retry_at = wall_ms() + backoff.FAILED_RETRY_MS
            await self._sleep(backoff.FAILED_RETRY_MS / 1000)
            self.next_retry_at = None
            return
        self.last_error = error
        log.warning("%s channel exited: %s", self.prefix, error)
        if ran_for * 1000 >= backoff.STABLE_RESET_MS:
            self.reconnect_attempts = 0
        self.reconnect_attempts += 1
        self.restarts += 1
        mgr.rt.metrics.channel_restarts.labels(channel=self.channel, account=self.account_id).inc()
        delay = backoff.restart_delay_ms(self.reconnect_attempts, mgr.uniform)
        self.next_retry_at = wall_ms() + delay
        self._set_state("backoff")
        log.info(
            "%s auto-restart attempt %d in %ds",
            self.prefix,
            self.reconnect_attempts,
            round(delay / 1000),
        )
        await self._sleep(delay / 1000)
        self.next_retry_at = None

    # -- control (RPCs, config changes) --------------------------------------------------------

    async def stop(self, reason: str) -> bool:
        """Stop the run (if any) and wait up to 5 s for it to exit; ``False`` if it did not."""
        self.manual_stop = True  # until channels.start or a config change
        self.stop_reason = reason
        self.wake()
        if self._run_scope is not None:
            self._run_scope.cancel()
        if self._idle.is_set():
            self._set_state("stopped" if self.config.configured else self.state)
            return True
        self._set_state("stopping")
        with trio.move_on_after(backoff.STOP_WAIT_MS / 1000):
            await self._idle.wait()
            return True
        log.warning(
            "%s channel stop exceeded %dms after abort; continuing shutdown",
            self.prefix,
            backoff.STOP_WAIT_MS,
        )
        return False

    def start(self) -> bool:
        """Clear manual stop, backoff and breaker; ``False`` while a stop still waits or the
        account cannot run (disabled, no token)."""
        scope = self._run_scope
        if scope is not None and scope.cancel_called and not self._idle.is_set():
            return False  # a stopped run is still winding down: one runner per account
        self.manual_stop = False
        self.breaker = False
        self.skipped = False
        self.stop_reason = None
        if self.state in ("backoff", "failed"):
            self.reconnect_attempts = 0
        if not self.should_run():
            self._idle_state()
            return False
        if self.state not in ("starting", "running"):
            self._set_state("starting")
        self.wake()
        return True

    def restart_run(self) -> None:
        """Config changed under a running account: end this run; the loop starts the next."""
        self.reconnect_attempts = 0
        self.wake()
        if self._run_scope is not None:
            self._run_scope.cancel()

    # -- views ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        cfg = self.config
        snap: dict[str, Any] = {
            "accountId": self.account_id,
            "name": cfg.name,
            "enabled": cfg.enabled,
            "configured": cfg.configured,
            "linked": self.linked if self.linked is not None else cfg.configured,
            "running": self.state in ("starting", "running"),
            "connected": self.connected,
            "restartPending": self.restart_pending,
            "reconnectAttempts": self.reconnect_attempts,
            "lastConnectedAt": self.last_connected_at,
            "lastError": self.last_error,
            "lastStartAt": self.last_start_at,
            "lastStopAt": self.last_stop_at,
            "lastInboundAt": self.last_inbound_at,
            "lastOutboundAt": self.last_outbound_at,
            "lastProbeAt": self.last_probe_at,
            "mode": "polling",
            "dmPolicy": cfg.dm_policy,
            "allowFrom": list(cfg.allow_from),
            "tokenSource": cfg.token_source,
            "baseUrl": cfg.api_base_url,
            "probe": self.probe_result,
            "audit": None,
            "state": self.state,
            "stopReason": self.stop_reason if self.state in ("stopped", "stopping") else None,
            "nextRetryAt": self.next_retry_at,
            "conflict": self.conflict,
            "lastPollAt": self.last_poll_at,
        }
        snap["authAgeMs"] = (
            max(0, wall_ms() - self.linked_at)
            if self.linked_at is not None and snap["linked"]
            else None
        )
        snap.update(self.extra)
        return snap


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
        self.service: ChannelService | None = None
        self._factory = factory
        self.accounts: dict[str, TelegramAccountConfig] = {}
        self.started = False
        self._changed = trio.Event()

    # -- wiring ----------------------------------------------------------------------------------

    def factory(self, slot: AccountSlot) -> Transport:
        if self._factory is not None:
            return self._factory(slot)
        from .telegram.transport import TelegramTransport

        assert self.service is not None
        return TelegramTransport(self.service, slot)

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
        """The ``channels`` nursery. Reports started once every account has its slot."""
        from .service import ChannelService

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
        self.service = ChannelService(self)
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.accounts = resolve_telegram(rt.settings.config, self.env)
                for acct in self.accounts.values():
                    self._add(acct, breaker=tripped, skipped=skip)
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
                self.started = True
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.service.close()

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

    def _add(self, acct: TelegramAccountConfig, *, breaker: bool, skipped: bool) -> AccountSlot:
        assert self.nursery is not None
        slot = AccountSlot("telegram", acct.account_id, acct, self)
        slot.breaker = breaker
        slot.skipped = skipped
        self.slots[slot.key] = slot
        self.nursery.start_soon(slot.loop, name=f"channel telegram:{acct.account_id}")
        return slot

    def apply_config(self) -> None:
        """Hot reload: diff the accounts and restart only what changed (CHANNELS.md 1.3)."""
        if self.nursery is None:
            return
        self.lane_limiter.total_tokens = self.rt.settings.config.agents.defaults.max_concurrent
        new = resolve_telegram(self.rt.settings.config, self.env)
        actions = plan_accounts(self.accounts, new)
        self.accounts = new
        for account_id, action in actions.items():
            key = ("telegram", account_id)
            slot = self.slots.get(key)
            if action == "start" or slot is None:
                if account_id in new:
                    log.info("[telegram:%s] account added", account_id)
                    self._add(new[account_id], breaker=False, skipped=False)
                continue
            if action == "stop":
                log.info("[telegram:%s] account removed; stopping", account_id)
                self.nursery.start_soon(self._remove, slot)
                continue
            slot.config = new[account_id]
            if action == "restart":
                log.info("[telegram:%s] connection settings changed; restarting", account_id)
                slot.manual_stop = False
                slot.restart_run()
            # "hot": the next message reads slot.config
        if actions:
            self.changed()

    async def _remove(self, slot: AccountSlot) -> None:
        slot.removed = True
        await slot.stop("removed")
        with trio.move_on_after(backoff.STOP_WAIT_MS / 1000):
            await slot._loop_done.wait()
        if self.slots.get(slot.key) is slot:
            del self.slots[slot.key]
        self.changed()

    async def drain(self) -> None:
        """Drain hook: stop taking new messages; let in-flight turns finish and reply."""
        if self.service is not None:
            await self.service.drain()

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

        tg = self.rt.settings.config.channels.telegram
        if channel == "telegram" and tg is not None:
            return default_account_id(tg)
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
        from .telegram.api import BotApi
        from .telegram.transport import probe_account

        async def one(slot: AccountSlot) -> None:
            cfg = slot.config
            if not cfg.configured or cfg.token is None:
                return
            api = BotApi(cfg.api_base_url, cfg.token, proxy=cfg.proxy, timeout_s=timeout_s)
            try:
                result = await probe_account(api, timeout_s)
            finally:
                with trio.CancelScope(shield=True):
                    await api.aclose()
            slot.probe_result = result
            slot.last_probe_at = wall_ms()
            if result.get("status") == 401:
                slot.linked = False
            elif result.get("ok"):
                slot.linked = True
                if result.get("bot"):
                    slot.extra["bot"] = {
                        "id": result["bot"].get("id"),
                        "username": result["bot"].get("username"),
                    }

        async with trio.open_nursery() as nursery:
            for slot in list(self.slots.values()):
                nursery.start_soon(one, slot)

    def pairing_store(self, channel: str) -> PairingStore:
        if self.service is not None and channel == "telegram":
            return self.service.pairing
        return PairingStore(self.rt.settings.paths.state_dir, channel)

    async def notify(self, channel: str, account_id: str, chat_id: str, text: str) -> bool:
        """Tell a sender something through the account's running transport (best effort)."""
        slot = self.slots.get((channel, account_id))
        transport = slot.transport if slot is not None else None
        send = getattr(transport, "send_text", None)
        if slot is None or slot.state != "running" or send is None:
            return False
        try:
            await send(chat_id, text, thread_id=None, reply_to=None)
        except Exception as exc:
            log.warning("%s notify %s failed: %s", slot.prefix, chat_id, self.describe(exc))
            return False
        return True

    def add_to_health(self, snapshot: HealthSummary) -> HealthSummary:
        """``snapshot`` with the channels block, order, labels and ``linkChannel``."""
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
            link_channel=LinkChannel(**_snake(link)) if link is not None else None,
        )

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


def _snake(link: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": link["id"],
        "label": link["label"],
        "linked": link["linked"],
        "auth_age_ms": link["authAgeMs"],
    }
