"""Rich output of the service commands, golden at 100 columns, and their JSON twins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from gateway.cli.control_view import ActionReport, action_json
from gateway.cli.doctor import DoctorReport, doctor_json
from gateway.cli.gateway_status import overview_json, status_json
from gateway.cli.status_view import GatewayStatusReport, OverviewReport
from gateway.service.checks import Check
from gateway.service.control import ActionResult
from gateway.service.discovery import FoundService
from gateway.service.doctor import DoctorResult
from gateway.service.identity import Identity
from gateway.service.runtime_view import ExitInfo, ServiceRuntime
from gateway.service.status import (
    ConfigView,
    GatewayStatus,
    ListenerView,
    LockView,
    PortView,
    RpcView,
    ServiceCommand,
    ServiceView,
)

from .goldens import assert_golden, render_text

UNIT_PATH = "/home/alice/.config/systemd/user/smart-agent-neo-gateway.service"
CONFIG = "/home/alice/.smart-agent-neo/smart-agent-neo.json"
IDENTITY = Identity("systemd", "user", "smart-agent-neo-gateway", Path(UNIT_PATH))
RUNNING = ServiceRuntime(True, True, "running", "active", "running", pid=4242)
COMMAND = ServiceCommand(
    ["/home/alice/.venv/bin/smart-agent-neo", "gateway", "run"],
    "/home/alice",
    {
        "SMART_AGENT_NEO_STATE_DIR": "/home/alice/.smart-agent-neo",
        "SMART_AGENT_NEO_CONFIG_PATH": CONFIG,
    },
)


def service(runtime: ServiceRuntime | None = RUNNING, **changes: Any) -> ServiceView:
    view = ServiceView(
        manager="systemd",
        scope="user",
        name="smart-agent-neo-gateway.service",
        path=UNIT_PATH,
        installed=True,
        reachable=True,
        error=None,
        runtime=runtime,
        command=COMMAND,
        drift=False,
        issues=[],
    )
    return attrs.evolve(view, **changes)


def status(**changes: Any) -> GatewayStatus:
    base = GatewayStatus(
        state="running",
        reasons=[],
        profile=None,
        service=service(),
        rpc=RpcView(
            True, "ws://127.0.0.1:28789", "local loopback", latency_ms=3, pid=4242, version="0.1.0"
        ),
        config=ConfigView(CONFIG, True, True, [], CONFIG, False),
        port=PortView(
            18789,
            "env/config",
            "busy",
            [
                ListenerView(
                    "127.0.0.1:28789",
                    4242,
                    "/home/alice/.venv/bin/smart-agent-neo gateway run",
                    "this-gateway",
                )
            ],
        ),
        lock=LockView("/home/alice/.smart-agent-neo/gateway.1a2b3c4d.lock", "held", 4242),
        last_error=None,
        logs="journalctl --user -u smart-agent-neo-gateway.service -n 200 --no-pager",
        collisions=[],
        other_services=None,
    )
    return attrs.evolve(base, **changes)


def degraded() -> GatewayStatus:
    looping = ServiceRuntime(
        True,
        True,
        "restarting",
        "activating",
        "auto-restart",
        last_exit=ExitInfo("exited", 75),
        restarts=7,
    )
    return status(
        state="degraded",
        reasons=[
            "the service keeps exiting (exit 75 (temporary failure, e.g. port busy (restarted))) and is restarted"
        ],
        service=service(looping),
        rpc=RpcView(
            False,
            "ws://127.0.0.1:28789",
            "local loopback",
            error="gateway connect failed: Connection refused (ws://127.0.0.1:28789)",
        ),
        port=PortView(18789, "service args", "free", []),
        lock=LockView("/home/alice/.smart-agent-neo/gateway.1a2b3c4d.lock", "leftover", None),
        last_error="Gateway failed to start: another gateway instance is already listening on ws://127.0.0.1:28789",
        collisions=[
            "profiles default and rescue both use port 18789 (and its derived ports): give one of them another gateway.port"
        ],
        other_services=[
            FoundService(
                "openclaw-gateway",
                "/etc/systemd/system/openclaw-gateway.service",
                "system",
                "systemd",
                False,
                None,
                None,
                None,
                "gateway-like service without the smart-agent-neo install marker",
            )
        ],
    )


def test_gateway_status_running_golden() -> None:
    assert_golden("gateway-status-running.txt", render_text(GatewayStatusReport(status())))


def test_gateway_status_degraded_golden() -> None:
    assert_golden("gateway-status-degraded.txt", render_text(GatewayStatusReport(degraded())))


def test_gateway_status_not_installed_golden() -> None:
    view = status(
        state="not-installed",
        service=service(
            None,
            installed=False,
            reachable=False,
            error="systemd user manager cannot be reached (systemctl --user: Failed to connect to bus: No medium found)",
            command=None,
            drift=None,
        ),
        rpc=RpcView(False, "ws://127.0.0.1:28789", "local loopback", skipped=True),
        config=ConfigView(CONFIG, False, True, [], None, False),
        port=PortView(18789, "env/config", "free", []),
        lock=LockView("/home/alice/.smart-agent-neo/gateway.1a2b3c4d.lock", "free", None),
        logs=None,
    )
    assert_golden("gateway-status-not-installed.txt", render_text(GatewayStatusReport(view)))


def test_gateway_status_json_is_stable() -> None:
    data = status_json(degraded())
    assert set(data) == {
        "state",
        "reasons",
        "profile",
        "service",
        "rpc",
        "config",
        "port",
        "lock",
        "lastError",
        "logs",
        "collisions",
        "otherServices",
        "channels",  # null unless --deep reached the gateway
        "gateway",  # bind mode/host, port and its source, probe URL/note, dashboard
        "fileLogs",
        "os",
    }
    assert data["service"]["installed"] is True
    # OPERATIONS.md E.5's own names, beside ours
    assert data["service"]["label"] == "systemd"
    assert data["service"]["loaded"] is True
    assert data["service"]["runtime"]["status"] == "restarting"
    assert data["config"]["cli"] == {"path": CONFIG, "exists": True, "valid": True, "issues": []}
    assert data["config"]["daemon"] == {"path": CONFIG}
    assert data["port"]["hints"] == []
    assert data["service"]["runtime"]["lastExit"] == {"kind": "exited", "code": 75}
    assert data["service"]["command"]["environment"]["SMART_AGENT_NEO_CONFIG_PATH"] == CONFIG
    assert data["rpc"] == {
        "ok": False,
        "url": "ws://127.0.0.1:28789",
        "source": "local loopback",
        "skipped": False,
        "error": "gateway connect failed: Connection refused (ws://127.0.0.1:28789)",
        "latencyMs": None,
        "pid": None,
        "version": None,
        "durationMs": None,
    }
    assert {k: v for k, v in data["config"].items() if k not in ("cli", "daemon")} == {
        "path": CONFIG,
        "exists": True,
        "valid": True,
        "issues": [],
        "servicePath": CONFIG,
        "mismatch": False,
    }
    assert data["otherServices"][0]["scope"] == "system"


def test_overview_golden_when_down_and_up() -> None:
    down = status(
        state="stopped",
        service=service(
            ServiceRuntime(
                True, True, "stopped", "inactive", "dead", last_exit=ExitInfo("exited", 0)
            )
        ),
        rpc=RpcView(
            False,
            "ws://127.0.0.1:28789",
            "local loopback",
            error="gateway connect failed: Connection refused (ws://127.0.0.1:28789)",
        ),
    )
    assert_golden("status-overview-down.txt", render_text(OverviewReport(down, None)))
    payload = {
        "runtimeVersion": "0.1.0",
        "gateway": {
            "pid": 4242,
            "uptimeMs": 3_723_000,
            "bind": "loopback",
            "url": "ws://127.0.0.1:28789",
            "authMode": "token",
            "profile": None,
            "configPath": CONFIG,
            "stateDir": "/home/alice/.smart-agent-neo",
            "connections": 2,
        },
        "sessions": {"count": 3},
        "heartbeat": {"agents": [{"agentId": "main", "enabled": False, "every": "30m"}]},
        "queuedSystemEvents": [],
    }
    assert_golden("status-overview-up.txt", render_text(OverviewReport(status(), payload)))
    data = overview_json(down, None)
    assert data["rpc"]["ok"] is False
    assert data["local"]["state"] == "stopped"
    assert data["local"]["service"]["installed"] is True
    assert overview_json(status(), payload)["gateway"]["pid"] == 4242


def test_lifecycle_reports_golden() -> None:
    installed = ActionResult(
        "install",
        "installed",
        IDENTITY,
        [
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", "smart-agent-neo-gateway.service"],
        ],
        [f"wrote {UNIT_PATH}"],
        [
            "lingering is off for alice: the gateway stops when you log out (enable it: sudo loginctl enable-linger alice)"
        ],
        RUNNING,
    )
    unchanged = ActionResult("install", "unchanged", IDENTITY, [], runtime=RUNNING)
    stopped = ActionResult(
        "stop",
        "stopped",
        IDENTITY,
        [["systemctl", "--user", "stop", "smart-agent-neo-gateway.service"]],
        runtime=ServiceRuntime(True, True, "stopped", "inactive", "dead"),
    )
    text = "\n".join(render_text(ActionReport(r)) for r in (installed, unchanged, stopped))
    assert_golden("lifecycle.txt", text)
    data = action_json(installed)
    assert data["ok"] is True
    assert data["result"] == "installed"
    assert data["service"] == {
        "manager": "systemd",
        "scope": "user",
        "name": "smart-agent-neo-gateway.service",
        "path": UNIT_PATH,
        "loaded": True,
        "enabled": True,
        "status": "running",
        "pid": 4242,
    }


def test_doctor_report_golden() -> None:
    result = DoctorResult(
        [
            Check("config.valid", "ok", f"{CONFIG} is valid"),
            Check(
                "config.permissions",
                "warn",
                f"readable by others: {CONFIG} is 644",
                lambda: "chmod",
            ),
            Check("lock.stale", "ok", "no gateway lock file"),
            Check(
                "port.conflict",
                "fail",
                "port 18789 is held by pid 77 (nginx: master process); stop it or give this profile another gateway.port (doctor never kills processes)",
            ),
        ],
        [],
    )
    assert_golden("doctor.txt", render_text(DoctorReport(result, fixed=False)))
    data = doctor_json(result)
    assert data["ok"] is False
    assert data["checks"][1] == {
        "id": "config.permissions",
        "status": "warn",
        "message": f"readable by others: {CONFIG} is 644",
        "fixable": True,
    }
    assert data["checks"][0]["fixable"] is False
