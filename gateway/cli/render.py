"""Report objects for the terminal: each renders itself with Rich (``__rich__``).

Every human view has a ``--json`` twin that prints the raw payload instead; the reports only
format what the gateway returned, they never compute state of their own.
"""

from __future__ import annotations

from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.text import Text

from .rows import Rows


def _age(ms: int | None) -> str:
    if ms is None:
        return "no activity"
    minutes = ms // 60_000
    return f"{minutes}m ago" if minutes else "just now"


def _duration(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def channel_state(info: dict[str, Any]) -> str:
    """One channel of ``health`` as OPERATIONS G.2 prints it: the probe when there is one
    (``ok (@bot) (123ms)`` / ``failed (401) - Unauthorized``), else linked / not linked."""
    probe = info.get("probe")
    if isinstance(probe, dict):
        elapsed = f" ({probe.get('elapsedMs', 0)}ms)"
        if probe.get("ok"):
            bot = (probe.get("bot") or {}).get("username")
            phone = (probe.get("phone") or {}).get("displayPhoneNumber")
            webhook = (probe.get("webhook") or {}).get("url")
            return (
                "ok"
                + (f" (@{bot})" if bot else "")
                + (f" ({phone})" if phone else "")
                + elapsed
                + (f" - webhook {webhook}" if webhook else "")
            )
        return f"failed ({probe.get('status') or 'unknown'}) - {probe.get('error') or 'no detail'}"
    if info.get("linked"):
        age = info.get("authAgeMs")
        return "linked" + (f" (auth age {int(age) // 60_000}m)" if age is not None else "")
    return "not linked" if info.get("configured") else "not configured"


@attrs.frozen
class HealthReport:
    url: str
    latency_ms: int
    health: dict[str, Any]

    def __rich__(self) -> RenderableType:
        h = self.health
        lines: list[RenderableType] = [
            Text.assemble(
                ("Gateway: ", "bold"), f"{self.url} ", ("ok", "green"), f" ({self.latency_ms}ms)"
            )
        ]
        order = h.get("channelOrder") or []
        labels = h.get("channelLabels") or {}
        if not order:
            lines.append(Text("Channels: none configured"))
        for channel in order:
            info = (h.get("channels") or {}).get(channel) or {}
            lines.append(Text(f"{labels.get(channel, channel)}: {channel_state(info)}"))
        agents = h.get("agents") or []
        names = ", ".join(
            a["agentId"] + (" (default)" if a.get("isDefault") else "") for a in agents
        )
        lines.append(Text(f"Agents: {names or 'none'}"))
        default = h.get("defaultAgentId", "main")
        for agent in agents:
            beat = agent.get("heartbeat") or {}
            state = beat.get("every", "?") if beat.get("enabled") else "disabled"
            lines.append(Text(f"Heartbeat interval: {state} ({agent['agentId']})"))
        sessions = h.get("sessions") or {}
        lines.append(
            Text(
                f"Session store ({default}): {sessions.get('path', '?')} ({sessions.get('count', 0)} entries)"
            )
        )
        for row in sessions.get("recent") or []:
            lines.append(Text(f"- {row['key']} ({_age(row.get('age'))})"))
        return Group(*lines)


def _config_state(config: dict[str, Any]) -> Text:
    if config.get("problem"):
        return Text.assemble(
            ("invalid: ", "bold red"),
            str(config["problem"]),
            " (still serving the last good config)",
        )
    if config.get("exists", True):
        return Text("ok", style="green")
    return Text("not found (embedded defaults)")


@attrs.frozen
class StatusReport:
    url: str
    latency_ms: int
    status: dict[str, Any]

    def __rich__(self) -> RenderableType:
        return self.table()

    def table(self) -> Rows:
        """The rows as a grid, so ``smart-agent-neo status`` can append local rows to it."""
        s = self.status
        gw = s.get("gateway") or {}
        table = Rows()
        table.add_row(
            "Gateway",
            Text.assemble(f"{self.url} ", ("reachable", "green"), f" ({self.latency_ms}ms)"),
        )
        table.add_row("Version", f"{s.get('runtimeVersion', '?')} (pid {gw.get('pid', '?')})")
        table.add_row("Uptime", _duration(int(gw.get("uptimeMs", 0))))
        table.add_row("Bind", f"{gw.get('bind', '?')} ({gw.get('url', '?')})")
        table.add_row("Auth", str(gw.get("authMode", "?")))
        table.add_row("Profile", str(gw.get("profile") or "default"))
        config = s.get("config")
        if not config:  # a gateway older than the config block
            table.add_row("Config", str(gw.get("configPath", "?")))
        else:
            table.add_row("Config", Text.assemble(f"{config['path']} ", _config_state(config)))
            table.add_row(
                "Reload",
                f"{config['reloadMode']} ({config['reloads']} reloads, "
                f"{config['restarts']} in-process restarts)",
            )
        table.add_row("State dir", str(gw.get("stateDir", "?")))
        table.add_row("Connections", str(gw.get("connections", 0)))
        sessions = s.get("sessions") or {}
        table.add_row("Sessions", str(sessions.get("count", 0)))
        beat = s.get("heartbeat") or {}
        agents = beat.get("agents") or []
        default = beat.get("defaultAgentId")
        if agents:
            table.add_row(
                "Agents",
                ", ".join(
                    str(a["agentId"]) + (" (default)" if a["agentId"] == default else "")
                    for a in agents
                ),
            )
        table.add_row(
            "Heartbeat",
            ", ".join(
                f"{a['agentId']}: {a['every'] if a.get('enabled') else 'disabled'}" for a in agents
            )
            or "none",
        )
        link = s.get("linkChannel")
        channels = s.get("channelSummary") or []
        if link or channels:
            table.add_row("Channels", "\n".join(channels) or "none configured")
        queued = s.get("queuedSystemEvents") or []
        table.add_row(
            "System events",
            f"{len(queued)} queued" + (f" (latest: {queued[-1]})" if queued else ""),
        )
        return table
