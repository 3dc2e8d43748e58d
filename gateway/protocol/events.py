"""The events this gateway emits: name, payload type, and whether a slow client may miss it.

``hello-ok.features.events`` and the ``x-events`` index of ``schemas/`` come from this table;
``events.Hub.broadcast`` refuses a name that is not in it.
"""

from __future__ import annotations

from .agent import AgentEventPayload
from .chat import ChatEventPayload
from .devices import DevicePairResolvedPayload, PendingDeviceRequest
from .nodes import NodeInvokeRequestPayload, NodePairResolvedPayload, PendingNodeRequest
from .schema import EventEntry
from .system import (
    ChallengePayload,
    HealthSummary,
    HeartbeatPayload,
    PresencePayload,
    ShutdownPayload,
    TickPayload,
)
from .voicewake import VoiceWakeTriggers

CHALLENGE = "connect.challenge"
TICK = "tick"
PRESENCE = "presence"
HEALTH = "health"
HEARTBEAT = "heartbeat"
SHUTDOWN = "shutdown"
AGENT = "agent"
CHAT = "chat"
NODE_INVOKE_REQUEST = "node.invoke.request"
NODE_PAIR_REQUESTED = "node.pair.requested"
NODE_PAIR_RESOLVED = "node.pair.resolved"
DEVICE_PAIR_REQUESTED = "device.pair.requested"
DEVICE_PAIR_RESOLVED = "device.pair.resolved"
VOICEWAKE_CHANGED = "voicewake.changed"

EVENTS: dict[str, EventEntry] = {
    e.name: e
    for e in (
        EventEntry(CHALLENGE, ChallengePayload, droppable=False, sequenced=False),
        EventEntry(TICK, TickPayload, droppable=True),
        EventEntry(PRESENCE, PresencePayload, droppable=True),
        EventEntry(HEALTH, HealthSummary, droppable=False),
        EventEntry(HEARTBEAT, HeartbeatPayload, droppable=True),
        EventEntry(SHUTDOWN, ShutdownPayload, droppable=False),
        EventEntry(AGENT, AgentEventPayload, droppable=False),
        EventEntry(CHAT, ChatEventPayload, droppable=False),
        EventEntry(NODE_INVOKE_REQUEST, NodeInvokeRequestPayload, droppable=False, sequenced=False),
        EventEntry(NODE_PAIR_REQUESTED, PendingNodeRequest, droppable=True),
        EventEntry(NODE_PAIR_RESOLVED, NodePairResolvedPayload, droppable=True),
        EventEntry(DEVICE_PAIR_REQUESTED, PendingDeviceRequest, droppable=True),
        EventEntry(DEVICE_PAIR_RESOLVED, DevicePairResolvedPayload, droppable=True),
        # broadcast with a seq; a node also gets it targeted (no seq) when it connects
        EventEntry(VOICEWAKE_CHANGED, VoiceWakeTriggers, droppable=True),
    )
}
