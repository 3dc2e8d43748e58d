"""Terminal views of ``gateway status`` and ``smart-agent-neo status`` (Rich ``__rich__``).

Labels follow the runbook (``Runtime:``, ``RPC probe:``, ``Probe target:``) so the healthy
baseline reads ``Runtime: running`` and ``RPC probe: ok``. The views only format what
``service.status`` gathered; they compute nothing.
"""

from __future__ import annotations

from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.text import Text

from ..channels.views import account_line
from ..config.paths import cli_command
from ..service.status import GatewayStatus, ServiceView
from .control_view import runtime_line
from .render import StatusReport
from .rows import Rows

STATE_STYLE = {
    "running": "green",
    "starting": "yellow",
    "degraded": "red",
    "conflict": "red",
    "stopped": "yellow",
    "not-installed": "yellow",
}
MAX_CONFIG_ISSUES = 5


def service_line(service: ServiceView) -> str:
    if service.manager is None:
        return f"unsupported ({service.error})"
    kind = f"systemd {service.scope}" if service.manager == "systemd" else "LaunchAgent"
    if not service.installed:
        return f"{kind}, not installed ({service.name})"
    runtime = service.runtime
    if service.reachable is False:
        return f"{kind} {service.name} (service manager unreachable)"
    if runtime is None or not runtime.loaded:
        return f"{kind} {service.name} (not loaded)"
    enabled = {True: "enabled", False: "disabled", None: "loaded"}[runtime.enabled]
    return f"{kind} {service.name} ({enabled})"


def _looked_at(s: GatewayStatus) -> str:
    """Where ``status`` looked for the gateway it could not reach: the port and its source,
    and whether this profile's lock names a running gateway."""
    where = f"port {s.port.port} (from {s.port.source})"
    if s.lock.pid is not None:
        return f"{where}; the lock says pid {s.lock.pid} runs ({s.lock.path})"
    return f"{where}; no running gateway of this profile (no live lock at {s.lock.path})"


def channel_lines(payload: dict[str, Any]) -> list[RenderableType]:
    """``gateway status --deep``: each channel account as ``channels status --probe`` shows it."""
    now = int(payload.get("ts") or 0)
    order = payload.get("channelOrder") or []
    if not order:
        return [_line("Channels", "none configured")]
    out: list[RenderableType] = [Text("Channels (--deep):", style="bold")]
    for channel in order:
        label = (payload.get("channelLabels") or {}).get(channel, channel)
        for snap in (payload.get("channelAccounts") or {}).get(channel, []):
            out.append(Text("  " + account_line(label, snap, now)))
    return out


def unsupervised_runtime(s: GatewayStatus) -> str:
    """The ``Runtime:`` line: the service manager's view when the service is installed;
    otherwise whether a gateway of this profile runs outside it (a terminal, another
    supervisor), so the runbook's healthy baseline reads the same either way."""
    runtime = s.service.runtime
    if s.service.installed and runtime is not None:
        return runtime_line(runtime)
    pid = s.lock.pid or (s.rpc.pid if s.rpc.ok else None)
    if pid is not None or s.rpc.ok:
        who = f"pid {pid}, " if pid is not None else ""
        return f"running ({who}not under the service manager)"
    if s.service.installed:
        return "unknown (the service manager cannot be asked; no gateway of this profile runs)"
    return "stopped (no service installed, no gateway of this profile running)"


def _line(label: str, value: str | Text) -> Text:
    return Text.assemble((f"{label}: ", "bold"), value)


@attrs.frozen
class GatewayStatusReport:
    status: GatewayStatus

    def __rich__(self) -> RenderableType:
        s = self.status
        out: list[RenderableType] = [
            _line("State", Text(s.state, style=f"bold {STATE_STYLE[s.state]}")),
            *[Text(f"  {reason}") for reason in s.reasons],
            _line("Profile", s.profile or "default"),
            *self._service(),
            *self._config(),
            *self._gateway(),
        ]
        out += [Text.assemble(("Warning: ", "yellow"), w) for w in s.collisions]
        if s.other_services is not None:
            if s.other_services:
                out.append(Text("Other gateway-like services (--deep):"))
                out += [
                    Text(f"  {o.scope} {o.manager} {o.path}: {o.detail}") for o in s.other_services
                ]
                out.append(
                    Text("  Run one gateway per machine unless profiles isolate ports and state.")
                )
            else:
                out.append(Text("Other gateway-like services (--deep): none"))
        if s.channels is not None:
            out += channel_lines(s.channels)
        return Group(*out)

    def _service(self) -> list[RenderableType]:
        service = self.status.service
        out: list[RenderableType] = [_line("Service", service_line(service))]
        if service.path and service.installed:
            out.append(_line("Service file", service.path))
        if service.command is not None:
            out.append(_line("Command", " ".join(service.command.program_arguments)))
            env = " ".join(f"{k}={v}" for k, v in service.command.environment.items())
            if env:
                out.append(_line("Service env", env))
        out += [_line("Service issue", issue) for issue in service.issues]
        if service.reachable is False and service.error:
            out.append(_line("Service manager", service.error))
        if self.status.file_logs:
            out.append(_line("File logs", self.status.file_logs))
        out.append(_line("Runtime", unsupervised_runtime(self.status)))
        return out

    def _config(self) -> list[RenderableType]:
        config = self.status.config
        flags = ("" if config.exists else " (missing)") + ("" if config.valid else " (invalid)")
        out: list[RenderableType] = [_line("Config (cli)", config.path + flags)]
        out += [_line("Config issue", i) for i in config.issues[:MAX_CONFIG_ISSUES]]
        if config.service_path:
            out.append(_line("Config (service)", config.service_path))
        return out

    def _gateway(self) -> list[RenderableType]:
        s = self.status
        port, rpc, lock = s.port, s.rpc, s.lock
        out: list[RenderableType] = []
        gw = s.gateway
        if gw is not None:
            out.append(
                _line(
                    "Gateway",
                    f"bind={gw.bind_mode} ({gw.bind_host}), port={gw.port} ({gw.port_source})",
                )
            )
        out.append(_line("Probe target", f"{rpc.url} (port from {port.source}; {rpc.source})"))
        if gw is not None:
            out.append(_line("Dashboard", gw.dashboard or "disabled"))
            if gw.probe_note:
                out.append(_line("Probe note", gw.probe_note))
        if port.status == "free":
            out.append(_line("Port", f"{port.port} is free (nothing listening)"))
        elif port.status == "unknown":
            out.append(_line("Port", f"{port.port}: listeners not inspected"))
        for listener in port.listeners:
            who = (
                f"pid {listener.pid} ({listener.command})"
                if listener.pid
                else "a process we cannot inspect"
            )
            out.append(_line("Listening", f"{listener.address} by {who} [{listener.owner}]"))
        lock_text = lock.state + (f" by pid {lock.pid}" if lock.pid else "")
        if lock.state == "leftover":
            lock_text += f" (harmless; `{cli_command(s.profile, 'doctor --fix')}` removes it)"
        out.append(_line("Lock", f"{lock_text} ({lock.path})"))
        if rpc.skipped:
            out.append(_line("RPC probe", "skipped (--no-probe)"))
        elif rpc.ok:
            detail = f"{rpc.latency_ms}ms" + (f", pid {rpc.pid}" if rpc.pid else "")
            detail += f", v{rpc.version}" if rpc.version else ""
            out.append(_line("RPC probe", Text.assemble(("ok", "green"), f" ({detail})")))
        else:
            out.append(_line("RPC probe", Text.assemble(("failed", "red"), f": {rpc.error}")))
        if s.last_error:
            out.append(_line("Last gateway error", s.last_error))
        if s.logs and s.state != "running":
            out.append(_line("Logs", s.logs))
        return out


@attrs.frozen
class OverviewReport:
    """``smart-agent-neo status``: the gateway's own summary when it answers, and always the
    local view (profile, config, service, state) so it works with the gateway down."""

    status: GatewayStatus
    payload: dict[str, Any] | None

    def __rich__(self) -> RenderableType:
        s = self.status
        if s.rpc.ok and self.payload is not None:
            table = StatusReport(s.rpc.url, s.rpc.latency_ms or 0, self.payload).table()
        else:
            table = Rows()
            table.add_row(
                "Gateway",
                Text.assemble(f"{s.rpc.url} ", ("unreachable", "red"), f" ({s.rpc.error})"),
            )
            table.add_row("Looked at", _looked_at(s))
            table.add_row("Profile", s.profile or "default")
            flags = ("" if s.config.exists else " (missing: embedded defaults)") + (
                "" if s.config.valid else " (invalid)"
            )
            table.add_row("Config", s.config.path + flags)
        if s.gateway is not None:
            table.add_row("Dashboard", s.gateway.dashboard or "disabled")
        if s.os:
            table.add_row("OS", s.os)
        table.add_row("State", Text(s.state, style=STATE_STYLE[s.state]))
        table.add_row("Service", service_line(s.service))
        table.add_row("Runtime", unsupervised_runtime(s))
        for reason in s.reasons:
            table.add_row("", reason)
        for issue in s.config.issues[:MAX_CONFIG_ISSUES]:
            table.add_row("Config issue", issue)
        for warning in s.collisions:
            table.add_row(Text("Warning", style="yellow"), warning)
        return table
