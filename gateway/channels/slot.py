"""One channel account's life: its state, its retry loop, its snapshot (CHANNELS.md 2.2, 2.3).

    AccountSlot.loop                         the account's whole life; never exits early
    └── transport.run()                      one run at a time, in the slot's cancel scope

Why a loop per account instead of a task per attempt: **one runner per account, always**.
A restart cancels the run's scope and the *same* loop starts the next run only after the
old one has returned -- so two pollers on one token can never overlap (the reference
started the new poller first and caused its own 409s). Exceptions stop at the slot: a
crashing transport puts its account in ``backoff`` and leaves everything else alone.

States: ``disabled`` (``enabled:false`` / no token), ``stopped`` (manual, shutdown,
crash-loop breaker, SMART_AGENT_NEO_SKIP_CHANNELS), ``starting``, ``running``, ``backoff``
(after a transient failure; 5 s doubling to 5 min, no cap), ``failed`` (token rejected,
bad config: retried slowly, every 10 min), and ``stopping`` while a stop waits for a run
that has not yet exited.

A transport reports through its slot: :meth:`AccountSlot.mark_running`, ``connected``,
``conflict``, ``last_error``, the in/out timestamps. Fatal setup errors raise
:class:`ChannelFatal`; anything else is transient.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import trio

from ..errors import ChannelError
from . import backoff
from .accounts import TelegramAccountConfig

if TYPE_CHECKING:
    from typing import TypeAlias

    from .whatsapp.config import WhatsAppAccountConfig

    AccountConfig: TypeAlias = TelegramAccountConfig | WhatsAppAccountConfig

    from .supervisor import ChannelManager

log = logging.getLogger("gateway.channels")

ENV_SKIP_CHANNELS = "SMART_AGENT_NEO_SKIP_CHANNELS"
State = Literal["disabled", "stopped", "stopping", "starting", "running", "backoff", "failed"]


class ChannelFatal(ChannelError):
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
    return int(time.time() * 1000)


@attrs.define(eq=False)
class AccountSlot:
    channel: str
    account_id: str
    config: AccountConfig
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
            and self.config.token_error is None  # a config error: `failed` until fixed
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
            if self.state != "failed" or self.last_error != cfg.token_error:
                log.warning("%s not starting: %s", self.prefix, cfg.token_error)
            self.last_error = cfg.token_error
            self._set_state("failed")
        elif not cfg.configured:
            self._set_state("disabled")
            self.last_error = cfg.missing_text()
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
                log.info("%s starting (mode:%s)", self.prefix, self.config.mode)
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
            # [ref] an automatic restart is scheduled: the account waits out its backoff
            "restartPending": self.state == "backoff",
            "reconnectAttempts": self.reconnect_attempts,
            "lastConnectedAt": self.last_connected_at,
            "lastError": self.last_error,
            "lastStartAt": self.last_start_at,
            "lastStopAt": self.last_stop_at,
            "lastInboundAt": self.last_inbound_at,
            "lastOutboundAt": self.last_outbound_at,
            "lastProbeAt": self.last_probe_at,
            "mode": cfg.mode,
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
            "outbox": self.manager.outbox.account_stats(self.channel, self.account_id),
        }
        snap["authAgeMs"] = (
            max(0, wall_ms() - self.linked_at)
            if self.linked_at is not None and snap["linked"]
            else None
        )
        snap.update(self.extra)
        return snap
