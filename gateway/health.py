"""The health snapshot (``health`` RPC, ``health`` event, ``smart-agent-neo health --json``).

``build_health`` is pure. ``HealthCache`` keeps the latest snapshot and its version:
every new snapshot bumps ``stateVersion.health``; a snapshot younger than the refresh
interval is served from the cache unless the caller asks for a probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from .agent.keys import DEFAULT_AGENT_ID, rest_from_stem, session_key
from .agent.store import sessions_dir
from .protocol.codec import Encoded, dumps, to_wire
from .protocol.system import AgentHealth, AgentHeartbeat, HealthSummary, SessionRecent, SessionStore


def session_store(state_dir: Path, now_ms: int, agent_id: str = DEFAULT_AGENT_ID) -> SessionStore:
    """Count transcripts (``*.jsonl``) and list the five most recent."""
    directory = sessions_dir(state_dir, agent_id)
    try:
        files = [(p, p.stat().st_mtime) for p in directory.glob("*.jsonl")]
    except OSError:
        files = []
    files.sort(key=lambda item: item[1], reverse=True)
    recent = []
    for path, mtime in files[:5]:
        updated = int(mtime * 1000)
        recent.append(
            SessionRecent(
                session_key(agent_id, rest_from_stem(path.stem)), updated, max(0, now_ms - updated)
            )
        )
    return SessionStore(str(directory), len(files), recent)


@attrs.frozen
class AgentInfo:
    id: str
    name: str
    is_default: bool


def build_health(
    state_dir: Path,
    now_ms: int,
    duration_ms: int,
    agents: Sequence[AgentInfo],
    heartbeat: AgentHeartbeat,
) -> HealthSummary:
    """The snapshot for the configured agents; ``sessions`` is the default agent's store.
    ``heartbeat`` is what the heartbeat runner will do (``agent.heartbeat.heartbeat_view``)."""
    rows = [
        AgentHealth(
            a.id, a.is_default, heartbeat, session_store(state_dir, now_ms, a.id), name=a.name
        )
        for a in agents
    ]
    default = next((row for row in rows if row.is_default), rows[0])
    return HealthSummary(
        ok=True,
        ts=now_ms,
        duration_ms=duration_ms,
        channels={},
        channel_order=[],
        channel_labels={},
        heartbeat_seconds=(heartbeat.every_ms or 0) // 1000,
        default_agent_id=default.agent_id,
        agents=rows,
        sessions=default.sessions,
    )


@attrs.define
class HealthCache:
    snapshot: HealthSummary | None = None
    version: int = 1
    produced_at: float = float("-inf")  # monotonic seconds
    _encoded: Encoded | None = attrs.field(default=None, init=False)  # made on first use

    def fresh(self, now: float, max_age_s: float) -> HealthSummary | None:
        if self.snapshot is not None and now - self.produced_at < max_age_s:
            return self.snapshot
        return None

    def store(self, snapshot: HealthSummary, now: float) -> None:
        self.snapshot = snapshot
        self.produced_at = now
        self.version += 1
        self._encoded = None

    def encoded(self, snapshot: HealthSummary) -> Encoded:
        """``snapshot`` as JSON text; encoded once per stored snapshot, however often asked."""
        if snapshot is not self.snapshot:
            return Encoded(dumps(to_wire(snapshot)))
        if self._encoded is None:
            self._encoded = Encoded(dumps(to_wire(snapshot)))
        return self._encoded
