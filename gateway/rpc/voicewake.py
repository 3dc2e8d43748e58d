"""voicewake.get, voicewake.set and wake (PROTOCOL.md 7.14)."""

from __future__ import annotations

from .. import observe
from ..agent.keys import session_key
from ..auth import READ, WRITE
from ..errors import InvalidRequest
from ..protocol.system import EmptyParams, OkResult
from ..protocol.voicewake import VoiceWakeSetParams, VoiceWakeTriggers, WakeParams
from .registry import CallContext, method


@method("voicewake.get", params=EmptyParams, result=VoiceWakeTriggers, scope=READ)
async def voicewake_get(ctx: CallContext, params: EmptyParams) -> VoiceWakeTriggers:
    return VoiceWakeTriggers(list(ctx.runtime.voicewake.triggers))


@method("voicewake.set", params=VoiceWakeSetParams, result=VoiceWakeTriggers, scope=WRITE)
async def voicewake_set(ctx: CallContext, params: VoiceWakeSetParams) -> VoiceWakeTriggers:
    """Replace the wake words; everyone hears ``voicewake.changed``."""
    return VoiceWakeTriggers(await ctx.runtime.voicewake.replace(params.triggers))


@method("wake", params=WakeParams, result=OkResult, scope=WRITE)
async def wake(ctx: CallContext, params: WakeParams) -> OkResult:
    """Queue ``text`` as a system event; ``mode: "now"`` also runs the agent heartbeat at
    once (when heartbeats are on), ``"next-heartbeat"`` leaves it for the next one."""
    rt = ctx.runtime
    text = params.text.strip()
    if not text:
        raise InvalidRequest("invalid wake params: text: must not be blank")
    session: str | None = None
    if params.session_key is not None or params.agent_id is not None:
        spec, rest = rt.agents.resolve(params.agent_id, params.session_key)  # INVALID_REQUEST
        session = session_key(spec.id, rest)
    # read by that session's next turn (agent/sysevents.py): the heartbeat's, with "now"
    rt.system_events.enqueue(session or rt.agents.main_session(), text, rt.now_ms())
    observe.system_event(rt, text)
    if params.mode == "now":
        rt.wake_heartbeat("wake", session)
    return OkResult(ok=True)
