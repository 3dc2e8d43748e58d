"""The events this gateway emits: name, payload type, and whether a slow client may miss it.

``hello-ok.features.events`` and the ``x-events`` index of ``schemas/`` come from this table;
``events.Hub.broadcast`` refuses a name that is not in it.
"""

from __future__ import annotations

from .agent import AgentEventPayload
from .chat import ChatEventPayload
from .schema import EventEntry
from .system import (
    ChallengePayload,
    HealthSummary,
    HeartbeatPayload,
    PresencePayload,
    ShutdownPayload,
    TickPayload,
)

CHALLENGE = "connect.challenge"
TICK = "tick"
PRESENCE = "presence"
HEALTH = "health"
HEARTBEAT = "heartbeat"
SHUTDOWN = "shutdown"
AGENT = "agent"
CHAT = "chat"

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
    )
}
