"""Channel methods: ``channels.status|start|stop|restart|logout`` (CHANNELS.md 2.5, PROTOCOL
7.10) and DM pairing: ``pairing.list|approve`` (CHANNELS.md 3.5)."""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..auth import ADMIN, PAIRING, READ
from ..channels.pairing import TTL_MS, bootstrap_owner
from ..channels.slot import AccountSlot
from ..channels.supervisor import ChannelManager
from ..channels.views import status_payload
from ..errors import GatewayError, InvalidRequest
from ..protocol.channels import (
    ChannelLogoutResult,
    ChannelParams,
    ChannelRestartResult,
    ChannelsStatusParams,
    ChannelsStatusResult,
    ChannelStartResult,
    ChannelStopResult,
    PairingApproveParams,
    PairingApproveResult,
    PairingListParams,
    PairingListResult,
    PairingRequestInfo,
    PairingRequestMeta,
)
from .registry import CallContext, method

log = logging.getLogger("gateway.channels")

SUPPORTED = ("telegram", "whatsapp")
DEFAULT_STATUS_TIMEOUT_MS = 10_000
MIN_STATUS_TIMEOUT_MS = 1_000
APPROVED_TEXT = "You have been approved. You can now talk to this assistant."


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _channel(name: str) -> str:
    channel = name.strip().lower()
    if channel not in SUPPORTED:
        raise _invalid(f"unsupported channel: {name}")
    return channel


def _slots(mgr: ChannelManager, params: ChannelParams) -> tuple[str, list[AccountSlot]]:
    channel = _channel(params.channel)
    slots = mgr.select(channel, params.account_id)
    if not slots and params.account_id is not None and mgr.select(channel, None):
        known = ", ".join(s.account_id for s in mgr.select(channel, None))
        raise _invalid(f'unknown account "{params.account_id}" for {channel} (configured: {known})')
    # a channel with no accounts configured: nothing to start or stop (started/stopped false)
    return channel, slots


def _account(params: ChannelParams, slots: list[AccountSlot]) -> str | None:
    if params.account_id is not None:
        return params.account_id
    return slots[0].account_id if len(slots) == 1 else None if slots else "default"


@method("channels.status", params=ChannelsStatusParams, result=ChannelsStatusResult, scope=READ)
async def channels_status(ctx: CallContext, params: ChannelsStatusParams) -> dict[str, Any]:
    mgr = ctx.runtime.channels
    if params.probe:
        timeout = max(MIN_STATUS_TIMEOUT_MS, params.timeout_ms or DEFAULT_STATUS_TIMEOUT_MS)
        await mgr.probe_all(timeout / 1000)
        ctx.runtime.channels_changed()
    return status_payload(mgr.snapshots(), mgr.defaults(), ctx.runtime.now_ms())


def _start(mgr: ChannelManager, slots: list[AccountSlot]) -> bool:
    """Start every slot with freshly read token files; ``True`` if there were slots and
    each one started."""
    mgr.reread_tokens(slots)
    started = [slot.start() for slot in slots]
    return bool(started) and all(started)


async def _stop(slots: list[AccountSlot], what: str) -> bool:
    """Stop every slot at once (one slow account does not hold up the others); ``True`` if
    there were slots and each one stopped."""
    stopped: list[bool] = []

    async def stop(slot: AccountSlot) -> None:
        log.info("%s %s requested over RPC", slot.prefix, what)
        stopped.append(await slot.stop("manual"))

    async with trio.open_nursery() as nursery:
        for slot in slots:
            nursery.start_soon(stop, slot)
    return bool(stopped) and all(stopped)


@method("channels.start", params=ChannelParams, result=ChannelStartResult, scope=ADMIN)
async def channels_start(ctx: CallContext, params: ChannelParams) -> ChannelStartResult:
    channel, slots = _slots(ctx.runtime.channels, params)
    started = _start(ctx.runtime.channels, slots)
    for slot in slots:
        log.info("%s start requested over RPC", slot.prefix)
    return ChannelStartResult(channel, _account(params, slots), started)


@method("channels.stop", params=ChannelParams, result=ChannelStopResult, scope=ADMIN)
async def channels_stop(ctx: CallContext, params: ChannelParams) -> ChannelStopResult:
    channel, slots = _slots(ctx.runtime.channels, params)
    stopped = await _stop(slots, "stop")
    return ChannelStopResult(channel, _account(params, slots), stopped)


@method("channels.restart", params=ChannelParams, result=ChannelRestartResult, scope=ADMIN)
async def channels_restart(ctx: CallContext, params: ChannelParams) -> ChannelRestartResult:
    channel, slots = _slots(ctx.runtime.channels, params)
    stopped = await _stop(slots, "restart")
    started = _start(ctx.runtime.channels, slots)
    return ChannelRestartResult(channel, _account(params, slots), stopped, started)


@method("channels.logout", params=ChannelParams, result=ChannelLogoutResult, scope=ADMIN)
async def channels_logout(ctx: CallContext, params: ChannelParams) -> ChannelLogoutResult:
    """WhatsApp Cloud: stop the account(s) and mark them not linked; the credentials stay
    in the config (``cleared: false``) and ``channels.start`` links again after a probe.
    Telegram has no session to log out of."""
    channel, slots = _slots(ctx.runtime.channels, params)
    if channel != "whatsapp":
        raise _invalid(f"channel {channel} does not support logout")

    async def logout(slot: AccountSlot) -> None:
        log.info("%s logout requested over RPC", slot.prefix)
        await slot.stop("manual")
        slot.linked = False
        slot.last_error = "logged out (channels.logout)"

    async with trio.open_nursery() as nursery:
        for slot in slots:
            nursery.start_soon(logout, slot)
    ctx.runtime.channels.changed()
    return ChannelLogoutResult(
        channel, _account(params, slots), cleared=False, logged_out=bool(slots)
    )


@method("pairing.list", params=PairingListParams, result=PairingListResult, scope=PAIRING)
async def pairing_list(ctx: CallContext, params: PairingListParams) -> PairingListResult:
    channel = _channel(params.channel)
    store = ctx.runtime.channels.pairing_store(channel)
    now = ctx.runtime.now_ms()
    pending = await trio.to_thread.run_sync(store.pending, now, params.account_id)
    return PairingListResult(
        channel,
        [
            PairingRequestInfo(
                r.id,
                r.code,
                r.created_at,
                r.last_seen_at,
                r.created_at + TTL_MS,
                r.account_id,
                r.username,
                r.name,
                PairingRequestMeta(r.username, r.name, r.account_id),
            )
            for r in pending
        ],
    )


@method("pairing.approve", params=PairingApproveParams, result=PairingApproveResult, scope=PAIRING)
async def pairing_approve(ctx: CallContext, params: PairingApproveParams) -> PairingApproveResult:
    channel = _channel(params.channel)
    mgr = ctx.runtime.channels
    store = mgr.pairing_store(channel)
    now = ctx.runtime.now_ms()
    req = await trio.to_thread.run_sync(store.approve, params.code, params.account_id, now)
    if req is None:
        raise _invalid(
            f"no pending pairing request with code {params.code.strip().upper()} for {channel}"
            " (codes expire after 1 hour; see `smart-agent-neo pairing list " + channel + "`)"
        )
    log.info("[%s:%s] pairing approved for sender %s", channel, req.account_id, req.id)
    owner = await _bootstrap_owner(ctx, channel, req.id)
    notified = False
    if params.notify:
        key = f"notify:pairing:{channel}:{req.account_id}:{req.id}:{params.code.strip().upper()}"
        notified = await mgr.notify(channel, req.account_id, req.id, APPROVED_TEXT, key)
    return PairingApproveResult(channel, True, req.id, req.account_id, notified, owner)


async def _bootstrap_owner(ctx: CallContext, channel: str, sender_id: str) -> str | None:
    """The first approval sets an unset ``commands.ownerAllowFrom`` (the config watcher
    then applies it like any edit); a file that cannot be written is logged, not fatal."""
    rt = ctx.runtime
    path = rt.settings.paths.config_path
    env = rt.channels.env
    try:
        owner = await trio.to_thread.run_sync(bootstrap_owner, path, channel, sender_id, env)
    except (GatewayError, OSError) as exc:
        log.warning("commands.ownerAllowFrom not set after the first approval: %s", exc)
        return None
    if owner is not None:
        log.info("command owner configured: %s (commands.ownerAllowFrom was empty)", owner)
    return owner
