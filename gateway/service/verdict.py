"""The one word ``gateway status`` answers with, from the three views it gathered (pure).

The supervisor's view, the port's owner and the RPC probe are collected apart and only
reconciled here, so a service manager that says "active" can never hide a port held by
something else, and a working RPC probe is never reported as "stopped":

    running        the probe answered (or, unprobed, our gateway holds the port)
    starting       the supervisor is starting it and nothing listens yet
    degraded       our gateway holds the port but does not answer, the service is up but the
                   port is closed, or it keeps exiting and being restarted
    conflict       something other than this gateway holds the port, or the port answers
                   for a process that is not the service's
    stopped        installed, not running (with the last exit when known)
    not-installed  no service, nothing running
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..ports import PortListener, looks_like_gateway
from .runtime_view import ServiceRuntime

State = Literal["running", "starting", "degraded", "conflict", "stopped", "not-installed"]
Owner = Literal["this-gateway", "gateway", "other", "unknown"]


@attrs.frozen
class Probe:
    """What the RPC probe found; ``answered``: a gateway spoke (even to refuse us)."""

    ok: bool
    skipped: bool = False
    answered: bool = False
    error: str | None = None
    pid: int | None = None


@attrs.frozen
class Facts:
    installed: bool
    runtime: ServiceRuntime | None  # None: manager not reachable (or nothing installed)
    listeners: list[PortListener] | None  # None: cannot tell
    probe: Probe
    lock_pid: int | None  # pid of a live holder of this config's lock
    port: int
    config_path: str | None = None  # this profile's config: a listener running it is ours


def owner_of(listener: PortListener, facts: Facts) -> Owner:
    ours = {facts.probe.pid, facts.lock_pid}
    if facts.runtime is not None:
        ours.add(facts.runtime.pid)
    ours.discard(None)
    if listener.pid is not None and listener.pid in ours:
        return "this-gateway"
    if facts.config_path is not None and listener.config_path == facts.config_path:
        return "this-gateway"
    if listener.pid is None:
        return "unknown"
    return "gateway" if looks_like_gateway(listener.command) else "other"


def _who(listener: PortListener) -> str:
    if listener.pid is None:
        return f"a process we cannot inspect ({listener.address})"
    return f"pid {listener.pid} ({listener.command or '?'})"


def classify(facts: Facts) -> tuple[State, list[str]]:
    rt, probe, port = facts.runtime, facts.probe, facts.port
    svc_up = rt is not None and rt.looks_running
    owners = [(owner_of(entry, facts), entry) for entry in facts.listeners or []]
    ours = [entry for kind, entry in owners if kind == "this-gateway"]
    # a process that answered the gateway handshake is a gateway whatever its command line
    # says (an embedded one); a gateway of another profile stays foreign
    foreign = [
        (kind, entry)
        for kind, entry in owners
        if kind == "gateway" or (kind == "other" and not probe.answered)
    ]

    if probe.ok:
        if svc_up and rt is not None and rt.pid and probe.pid and rt.pid != probe.pid:
            return "conflict", [
                f"port {port} is answered by pid {probe.pid}, not by the service "
                f"(main pid {rt.pid}); the service cannot bind it"
            ]
        if facts.installed and not svc_up:
            return "running", [f"running outside the service manager (pid {probe.pid})"]
        if not facts.installed and not svc_up:
            who = f"pid {probe.pid}" if probe.pid else "its pid unknown"
            return "running", [f"running in the foreground, not as a service ({who})"]
        return "running", []

    if foreign and not ours:
        kind, listener = foreign[0]
        what = "another gateway" if kind == "gateway" else "another process"
        return "conflict", [f"port {port} is held by {what}: {_who(listener)}"]

    busy = bool(owners)
    if probe.skipped and busy:
        if ours or svc_up or facts.lock_pid:
            return "running", ["not probed (--no-probe)"]
        return "conflict", [f"port {port} is held by {_who(owners[0][1])}"]

    if busy:  # ours (or unidentifiable) holds the port, and the probe failed
        reason = probe.error or "no answer"
        holder = f"pid {ours[0].pid}" if ours else _who(owners[0][1])
        if not ours and not probe.answered and not svc_up and not facts.lock_pid:
            return "conflict", [
                f"port {port} is held by {holder}, which does not answer as a gateway ({reason})"
            ]
        return "degraded", [
            f"the gateway ({holder}) holds port {port} but the RPC probe failed: {reason}"
        ]

    if rt is not None and rt.status == "starting":
        return "starting", ["the service manager is starting the gateway"]
    if rt is not None and rt.status == "restarting":
        exit_ = rt.last_exit.describe() if rt.last_exit else "unknown exit"
        return "degraded", [f"the service keeps exiting ({exit_}) and is restarted"]
    if svc_up:
        return "degraded", [
            f"the service is {rt.status if rt else '?'} but port {port} is not listening"
        ]
    if facts.installed:
        if rt is None:
            return "stopped", ["the service manager cannot be reached"]
        if rt.last_exit is not None and rt.status == "failed":
            return "stopped", [f"the service failed: {rt.last_exit.describe()}"]
        return "stopped", []
    return "not-installed", []
