"""The agent heartbeat: a periodic turn in the default agent's main session (OPERATIONS G.4).

Every ``agents.defaults.heartbeat.every`` the gateway asks the default agent whether anything
needs the user's attention. A reply of ``HEARTBEAT_OK`` (the token at the start or end, with
at most ``ackMaxChars`` of other text) means "nothing to report"; anything else is an alert.
Each finished heartbeat becomes a ``heartbeat`` event and the answer to ``last-heartbeat`` --
what a monitor reads to know the agent side is alive. ``every: "0m"`` or
``set-heartbeats {enabled: false}`` stops them.

An alert goes out through the outbox (``agents.defaults.heartbeat.target``): ``last`` (the
default) = the main session's last route, a channel (with ``to``, else that channel's last
route), or ``none``; the ``heartbeat`` event then names ``channel``, ``accountId`` and ``to``.
``system-event {wake:true}`` and ``POST /hooks/wake`` ask for a heartbeat now
(:class:`Wakes`); the turn reads the session's queued system events first
(``agent/sysevents.py``).

``classify`` and ``parse_every`` are pure; ``heartbeat_loop`` is the driver.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Literal

import attrs
import trio

from .. import observe
from ..config.model import Config
from ..errors import GatewayError
from ..protocol.system import AgentHeartbeat, HeartbeatPayload, HeartbeatStatusName
from .service import RunRequest

if TYPE_CHECKING:
    from ..channels.delivery import Destination
    from ..runtime import Runtime

log = logging.getLogger("gateway.heartbeat")

TOKEN = "HEARTBEAT_OK"
DEFAULT_PROMPT = (
    "This is a scheduled heartbeat. If nothing needs the user's attention right now, reply "
    f"exactly {TOKEN}. Otherwise reply with a short note saying what needs attention."
)
RECHECK_S = 30.0  # while disabled: how often to look at the config / the toggle again
PREVIEW_CHARS = 200
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def heartbeat_view(config: Config, toggled_on: bool) -> AgentHeartbeat:
    """What the heartbeat runner (agent/heartbeat.py) will do, as health and status show it."""
    cfg = config.agents.defaults.heartbeat
    every_ms = parse_every(cfg.every)
    return AgentHeartbeat(
        enabled=toggled_on and every_ms is not None,
        every=cfg.every,
        every_ms=every_ms,
        prompt=cfg.prompt or DEFAULT_PROMPT,
        target=cfg.target,
        ack_max_chars=cfg.ack_max_chars,
    )


def parse_every(text: str) -> int | None:
    """``"30m"`` -> 1_800_000 ms; ``"0m"`` -> None (off). The config already checked the form."""
    match = re.fullmatch(r"([0-9]+)(ms|s|m|h)", text)
    if match is None:
        return None
    ms = int(match.group(1)) * _UNITS[match.group(2)]
    return ms or None


Indicator = Literal["ok", "alert", "error"]


@attrs.frozen
class Verdict:
    status: HeartbeatStatusName
    preview: str | None
    indicator: Indicator


def classify(reply: str, ack_max_chars: int) -> Verdict:
    text = reply.strip()
    if not text:
        return Verdict("ok-empty", None, "ok")
    rest = text
    if rest.startswith(TOKEN):
        rest = rest[len(TOKEN) :]
    elif rest.endswith(TOKEN):
        rest = rest[: -len(TOKEN)]
    if rest != text and len(rest.strip()) <= ack_max_chars:
        return Verdict("ok-token", rest.strip() or None, "ok")
    return Verdict("sent", text[:PREVIEW_CHARS], "alert")


@attrs.define
class Wakes:
    """Heartbeats asked for now, per session (None: the default agent's main session)."""

    wanted: trio.Event = attrs.field(factory=trio.Event)
    pending: dict[str | None, str] = attrs.field(factory=dict)

    def request(self, reason: str, session_key: str | None = None) -> None:
        self.pending.setdefault(session_key, reason)
        self.wanted.set()

    def take(self) -> dict[str | None, str]:
        pending, self.pending = self.pending, {}
        self.wanted = trio.Event()
        return pending


async def destination(rt: Runtime) -> Destination | None:
    """Where an alert goes under ``heartbeat.target``; None: nowhere (``none``, or no route).
    Raises ``NOT_LINKED`` / ``INVALID_REQUEST`` when the configured route cannot send."""
    from ..channels import delivery
    from ..channels.agent_delivery import last_route

    cfg = rt.settings.config.agents.defaults.heartbeat
    if cfg.target == "none" or not rt.channels.slots:
        return None
    found: Destination | None
    if cfg.target != "last" and cfg.to:
        found = delivery.resolve(rt.channels, cfg.target, cfg.account_id, cfg.to, check=False)
    else:
        found = await last_route(rt, None, None)
        if found is not None and cfg.target != "last":
            account = cfg.account_id
            if found.channel != cfg.target or (account and found.account_id != account):
                found = None
    if found is not None:
        delivery.check_linked(delivery.account_slot(rt.channels, found.channel, found.account_id))
    return found


async def beat(
    rt: Runtime, reason: str | None = None, session_key: str | None = None
) -> HeartbeatPayload:
    """Run one heartbeat now and report it (event, ``last-heartbeat``, log, metrics); an
    alert is delivered per ``heartbeat.target``. ``reason``: why it runs outside its
    schedule (``wake``, ``hook:wake``)."""
    from ..channels.replies import deliver_payloads

    cfg = rt.settings.config.agents.defaults.heartbeat
    run_id = f"heartbeat-{uuid.uuid4()}"
    started = trio.current_time()
    where: Destination | None = None
    delivering = False
    try:
        run = rt.agents.start(
            RunRequest(
                run_id, cfg.prompt or DEFAULT_PROMPT, session_key=session_key, is_heartbeat=True
            )
        )
        await run.done.wait()
        if run.status != "ok":
            verdict, reason = Verdict("failed", None, "error"), run.summary
        else:
            text = "\n".join(run.payloads)
            verdict = classify(text, cfg.ack_max_chars)
            if verdict.status == "sent":
                delivering = True
                where = await destination(rt)
                if where is None and cfg.target != "none":
                    reason = "no-target"
                elif where is not None:
                    status = await deliver_payloads(
                        rt, where, f"heartbeat:{run_id}", [text.strip()], "heartbeat"
                    )
                    if status in ("failed", "partial_failed"):
                        verdict, reason = Verdict("failed", verdict.preview, "error"), status
    except GatewayError as exc:  # gateway stopping, too many runs, bad agents config, NOT_LINKED
        status_name: HeartbeatStatusName = "failed" if delivering else "skipped"
        verdict, reason = Verdict(status_name, None, "error"), exc.message
    payload = HeartbeatPayload(
        ts=rt.now_ms(),
        status=verdict.status,
        id=run_id,
        preview=verdict.preview,
        duration_ms=int((trio.current_time() - started) * 1000),
        reason=reason,
        indicator_type=verdict.indicator,
        to=where.target.to if where is not None else None,
        account_id=where.account_id if where is not None else None,
        channel=where.channel if where is not None else None,
    )
    observe.heartbeat(rt, payload)
    return payload


def interval_s(rt: Runtime) -> float | None:
    if not rt.process.heartbeats_enabled:
        return None
    every = parse_every(rt.settings.config.agents.defaults.heartbeat.every)
    return every / 1000 if every else None


async def heartbeat_loop(rt: Runtime) -> None:
    """One heartbeat per interval, and one per wake. Config and toggle are read each time
    (hot reload); ``set-heartbeats {enabled:false}`` pauses both.

    Cancellation: at any await; a heartbeat run in flight is an agent run like any other
    and is drained or interrupted by the agent service.
    """
    wakes: Wakes = rt.heartbeat_wakes
    due: float | None = None
    while True:
        every = interval_s(rt)
        now = trio.current_time()
        if every is None:
            due = None
        elif due is None:
            due = now + every
        with trio.move_on_at(due if due is not None else now + RECHECK_S):
            await wakes.wanted.wait()
        if wakes.wanted.is_set():
            asked = wakes.take()
            if rt.process.heartbeats_enabled:
                for session, why in asked.items():
                    await beat(rt, why, session)
                due = None  # the next scheduled beat: a whole interval after this one
            continue
        if due is not None and trio.current_time() >= due:
            due = None
            if interval_s(rt) is not None:
                await beat(rt)
