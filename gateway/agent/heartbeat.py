"""The agent heartbeat: a periodic turn in the default agent's main session (OPERATIONS G.4).

Every ``agents.defaults.heartbeat.every`` the gateway asks the default agent whether anything
needs the user's attention. A reply of ``HEARTBEAT_OK`` (the token at the start or end, with
at most ``ackMaxChars`` of other text) means "nothing to report"; anything else is an alert.
Each finished heartbeat becomes a ``heartbeat`` event and the answer to ``last-heartbeat`` --
what a monitor reads to know the agent side is alive. ``every: "0m"`` or
``set-heartbeats {enabled: false}`` stops them.

``classify`` and ``parse_every`` are pure; ``heartbeat_loop`` is the driver.
"""

from __future__ import annotations

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
    from ..runtime import Runtime

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
        target="none",
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


async def beat(rt: Runtime) -> HeartbeatPayload:
    """Run one heartbeat now and report it (event, ``last-heartbeat``, log, metrics)."""
    cfg = rt.settings.config.agents.defaults.heartbeat
    run_id = f"heartbeat-{uuid.uuid4()}"
    started = trio.current_time()
    try:
        run = rt.agents.start(RunRequest(run_id, cfg.prompt or DEFAULT_PROMPT))
        await run.done.wait()
        if run.status == "ok":
            verdict = classify("\n".join(run.payloads), cfg.ack_max_chars)
            reason = None
        else:
            verdict, reason = Verdict("failed", None, "error"), run.summary
    except GatewayError as exc:  # gateway stopping, too many runs, bad agents config
        verdict, reason = Verdict("skipped", None, "error"), exc.message
    payload = HeartbeatPayload(
        ts=rt.now_ms(),
        status=verdict.status,
        id=run_id,
        preview=verdict.preview,
        duration_ms=int((trio.current_time() - started) * 1000),
        reason=reason,
        indicator_type=verdict.indicator,
    )
    observe.heartbeat(rt, payload)
    return payload


def interval_s(rt: Runtime) -> float | None:
    if not rt.process.heartbeats_enabled:
        return None
    every = parse_every(rt.settings.config.agents.defaults.heartbeat.every)
    return every / 1000 if every else None


async def heartbeat_loop(rt: Runtime) -> None:
    """One heartbeat per interval. Config and toggle are read each time (hot reload).

    Cancellation: at any await; a heartbeat run in flight is an agent run like any other
    and is drained or interrupted by the agent service.
    """
    while True:
        every = interval_s(rt)
        wanted = rt.heartbeat_wanted  # `wake {mode:"now"}`: beat before the interval ends
        with trio.move_on_after(RECHECK_S if every is None else every) as waited:
            await wanted.wait()
        if wanted.is_set():
            rt.heartbeat_wanted = trio.Event()
        elif every is None:
            continue  # off: check again later
        if interval_s(rt) is not None and (wanted.is_set() or waited.cancelled_caught):
            await beat(rt)
